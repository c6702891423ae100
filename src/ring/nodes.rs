//! The node registry that [`super::HashRing`], [`super::Md5Ring`],
//! [`super::Rendezvous`] and [`super::Maglev`] share: node records in
//! insertion order (their dense indices) plus a name → index map, with
//! removal renumbering the later nodes. The validation of new nodes stays
//! with each placement, whose checks differ in kind and order.

use std::collections::HashMap;
use std::ops::{Deref, Index, IndexMut};

use crate::error::{Error, Result};

/// A node record that carries its name.
pub(crate) trait Named {
    fn name(&self) -> &str;
}

/// Named node records in index order. Reads go through `Deref` to the
/// slice; changes go through these methods so the map stays in step.
#[derive(Debug, Clone)]
pub(crate) struct NodeSet<N> {
    nodes: Vec<N>,
    by_name: HashMap<String, usize>,
}

impl<N> Default for NodeSet<N> {
    fn default() -> Self {
        NodeSet {
            nodes: Vec::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<N: Named> NodeSet<N> {
    /// Name of the node at `index`.
    pub(crate) fn name(&self, index: usize) -> Option<&str> {
        self.nodes.get(index).map(N::name)
    }

    /// Index of the named node.
    pub(crate) fn position(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// Index of the named node, or [`Error::NodeNotFound`].
    pub(crate) fn find(&self, name: &str) -> Result<usize> {
        self.position(name)
            .ok_or_else(|| Error::NodeNotFound(name.to_owned()))
    }

    /// The named node's record.
    pub(crate) fn by_name(&self, name: &str) -> Option<&N> {
        self.position(name).map(|i| &self.nodes[i])
    }

    /// [`Error::NodeExists`] when the name is taken.
    pub(crate) fn check_absent(&self, name: &str) -> Result<()> {
        if self.by_name.contains_key(name) {
            return Err(Error::NodeExists(name.to_owned()));
        }
        Ok(())
    }

    /// Appends a node whose name the caller checked with
    /// [`Self::check_absent`]; returns its index.
    pub(crate) fn push(&mut self, node: N) -> usize {
        let idx = self.nodes.len();
        let previous = self.by_name.insert(node.name().to_owned(), idx);
        debug_assert!(previous.is_none(), "push of a name already present");
        self.nodes.push(node);
        idx
    }

    /// Removes the named node, shifting later indices down by one; returns
    /// the index it had. Fails with [`Error::NodeNotFound`].
    pub(crate) fn remove(&mut self, name: &str) -> Result<usize> {
        let idx = self
            .by_name
            .remove(name)
            .ok_or_else(|| Error::NodeNotFound(name.to_owned()))?;
        self.nodes.remove(idx);
        for v in self.by_name.values_mut() {
            if *v > idx {
                *v -= 1;
            }
        }
        Ok(idx)
    }
}

impl<N> Deref for NodeSet<N> {
    type Target = [N];
    fn deref(&self) -> &[N] {
        &self.nodes
    }
}

impl<N> Index<usize> for NodeSet<N> {
    type Output = N;
    fn index(&self, index: usize) -> &N {
        &self.nodes[index]
    }
}

/// Changes a record in place; callers must not change its name.
impl<N> IndexMut<usize> for NodeSet<N> {
    fn index_mut(&mut self, index: usize) -> &mut N {
        &mut self.nodes[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct N(String, u32);
    impl Named for N {
        fn name(&self) -> &str {
            &self.0
        }
    }

    fn set(names: &[&str]) -> NodeSet<N> {
        let mut s = NodeSet::default();
        for (i, n) in names.iter().enumerate() {
            s.check_absent(n).unwrap();
            assert_eq!(s.push(N(n.to_string(), i as u32)), i);
        }
        s
    }

    #[test]
    fn remove_renumbers_later_nodes() {
        let mut s = set(&["a", "b", "c", "d"]);
        assert_eq!(s.remove("b"), Ok(1));
        assert_eq!(s.len(), 3);
        for (i, n) in ["a", "c", "d"].iter().enumerate() {
            assert_eq!(s.position(n), Some(i));
            assert_eq!(s.name(i), Some(*n));
        }
        assert_eq!(s.position("b"), None);
        assert_eq!(s.by_name("d"), Some(&N("d".into(), 3)));
        assert_eq!(s.remove("b"), Err(Error::NodeNotFound("b".into())));
        assert_eq!(s.find("zz"), Err(Error::NodeNotFound("zz".into())));
    }

    #[test]
    fn names_are_unique() {
        let mut s = set(&["a"]);
        assert_eq!(s.check_absent("a"), Err(Error::NodeExists("a".into())));
        s[0].1 = 7;
        assert_eq!(s.by_name("a").map(|n| n.1), Some(7));
        assert_eq!(s.name(1), None);
    }
}
