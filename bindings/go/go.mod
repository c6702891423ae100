module quorumkit

go 1.19
