module ringexample

go 1.19
