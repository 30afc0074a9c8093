//! Nested-group flattening (parity): every group gets the users of all its descendant groups,
//! among the synced groups only. Cycles are safe.
//!
//! The reference re-walks the tree from every group (quadratic or worse on deep trees, and it
//! loops on cycles). Here the group graph is condensed into strongly connected components
//! (Tarjan, iterative), which come out children-first, so each component's set is built once
//! from its own direct members and its children's finished sets. A per-user stamp array
//! deduplicates without hashing, so the cost is linear in the size of the output.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use super::model::Group;

/// The flattened members of each group, as indices into `users`, in the order of `groups`.
pub struct Flattened {
    /// Every distinct user external id that appears as a member, moved out of the groups.
    pub users: Vec<String>,
    /// Per group: indices into `users`, deduplicated, unsorted.
    pub members: Vec<Vec<u32>>,
}

/// Flattens `groups`, taking their direct members (each distinct id is kept once, the repeats
/// are dropped as they are met: one string per user, not one per membership).
pub fn flatten(groups: &mut [Group]) -> Flattened {
    // Intern user ids so sets are plain integer vectors.
    let hasher = DefaultHashBuilder::default();
    let mut user_index: HashTable<u32> = HashTable::new();
    let mut users: Vec<String> = Vec::new();
    let direct: Vec<Vec<u32>> = groups
        .iter_mut()
        .map(|g| {
            std::mem::take(&mut g.members)
                .into_iter()
                .map(|id| {
                    let hash = hasher.hash_one(id.as_str());
                    match user_index.find(hash, |&u| users[u as usize] == id) {
                        Some(&u) => u,
                        None => {
                            let u = users.len() as u32;
                            user_index.insert_unique(hash, u, |&v| hasher.hash_one(users[v as usize].as_str()));
                            users.push(id);
                            u
                        }
                    }
                })
                .collect()
        })
        .collect();
    drop(user_index);

    // Edges only to synced groups (first group wins if an id repeats).
    let mut group_index: HashMap<&str, usize> = HashMap::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        group_index.entry(g.external_id.as_str()).or_insert(i);
    }
    let edges: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| {
            g.children
                .iter()
                .filter_map(|c| group_index.get(c.as_str()).copied())
                .collect()
        })
        .collect();

    let (component_of, components) = strongly_connected(&edges);

    let mut user_stamp = vec![u32::MAX; users.len()];
    let mut component_stamp = vec![u32::MAX; components.len()];
    let mut sets: Vec<Vec<u32>> = Vec::with_capacity(components.len());
    // Components arrive children-first: every child component's set already exists.
    for (c, nodes) in components.iter().enumerate() {
        let stamp = c as u32;
        let mut set = Vec::new();
        for &g in nodes {
            for &u in &direct[g] {
                if user_stamp[u as usize] != stamp {
                    user_stamp[u as usize] = stamp;
                    set.push(u);
                }
            }
        }
        for &g in nodes {
            for &child in &edges[g] {
                let cc = component_of[child];
                if cc == c || component_stamp[cc] == stamp {
                    continue;
                }
                component_stamp[cc] = stamp;
                for &u in &sets[cc] {
                    if user_stamp[u as usize] != stamp {
                        user_stamp[u as usize] = stamp;
                        set.push(u);
                    }
                }
            }
        }
        sets.push(set);
    }

    let members = component_of.iter().map(|&c| sets[c].clone()).collect();
    Flattened { users, members }
}

/// Tarjan's algorithm without recursion. Returns each node's component and the components in
/// the order they complete, which is a reverse topological order (children before parents).
fn strongly_connected(edges: &[Vec<usize>]) -> (Vec<usize>, Vec<Vec<usize>>) {
    const UNVISITED: usize = usize::MAX;
    let n = edges.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut component_of = vec![UNVISITED; n];
    let mut components = Vec::new();
    let mut next = 0usize;
    // (node, position of the next edge to look at)
    let mut work: Vec<(usize, usize)> = Vec::new();

    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        work.push((root, 0));
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if *edge == 0 && index[v] == UNVISITED {
                index[v] = next;
                low[v] = next;
                next += 1;
                stack.push(v);
                on_stack[v] = true;
            }
            if let Some(&w) = edges[v].get(*edge) {
                *edge += 1;
                if index[w] == UNVISITED {
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            // All edges of v done.
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let c = components.len();
                let mut nodes = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component_of[w] = c;
                    nodes.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(nodes);
            }
        }
    }
    (component_of, components)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str, members: &[&str], children: &[&str]) -> Group {
        Group {
            external_id: id.into(),
            name: id.into(),
            members: members.iter().map(|s| s.to_string()).collect(),
            children: children.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn flat(groups: &[Group]) -> Vec<(String, Vec<String>)> {
        let f = flatten(&mut groups.to_vec());
        groups
            .iter()
            .zip(&f.members)
            .map(|(g, m)| {
                let mut ids: Vec<String> = m.iter().map(|&u| f.users[u as usize].clone()).collect();
                ids.sort();
                (g.external_id.clone(), ids)
            })
            .collect()
    }

    fn expect(groups: &[Group], want: &[(&str, &[&str])]) {
        let want: Vec<(String, Vec<String>)> = want
            .iter()
            .map(|(g, m)| (g.to_string(), m.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(flat(groups), want);
    }

    #[test]
    fn nested_groups_get_their_descendants_users() {
        let groups = [
            group("all", &["ceo"], &["eng"]),
            group("eng", &["lead"], &["backend", "frontend"]),
            group("backend", &["bob", "lead"], &[]),
            group("frontend", &["fay"], &[]),
        ];
        expect(
            &groups,
            &[
                ("all", &["bob", "ceo", "fay", "lead"]),
                ("eng", &["bob", "fay", "lead"]),
                ("backend", &["bob", "lead"]),
                ("frontend", &["fay"]),
            ],
        );
    }

    #[test]
    fn cycles_terminate_and_share_their_members() {
        let groups = [
            group("a", &["u1"], &["b"]),
            group("b", &["u2"], &["c"]),
            group("c", &["u3"], &["a", "d"]),
            group("d", &["u4"], &[]),
            group("self", &["u5"], &["self"]),
        ];
        expect(
            &groups,
            &[
                ("a", &["u1", "u2", "u3", "u4"]),
                ("b", &["u1", "u2", "u3", "u4"]),
                ("c", &["u1", "u2", "u3", "u4"]),
                ("d", &["u4"]),
                ("self", &["u5"]),
            ],
        );
    }

    #[test]
    fn children_that_are_not_synced_groups_are_ignored() {
        let groups = [group("a", &["u1"], &["not-synced", "b"]), group("b", &[], &[])];
        expect(&groups, &[("a", &["u1"]), ("b", &[])]);
    }

    #[test]
    fn diamonds_do_not_duplicate_members() {
        let groups = [
            group("top", &[], &["left", "right"]),
            group("left", &["x"], &["bottom"]),
            group("right", &["x"], &["bottom"]),
            group("bottom", &["x", "y", "y"], &[]),
        ];
        expect(
            &groups,
            &[
                ("top", &["x", "y"]),
                ("left", &["x", "y"]),
                ("right", &["x", "y"]),
                ("bottom", &["x", "y"]),
            ],
        );
    }

    #[test]
    fn a_deep_chain_does_not_overflow_the_stack() {
        let n = 100_000;
        let groups: Vec<Group> = (0..n)
            .map(|i| {
                let child = if i + 1 < n { vec![format!("g{}", i + 1)] } else { vec![] };
                Group {
                    external_id: format!("g{i}"),
                    name: format!("g{i}"),
                    members: if i + 1 == n { vec!["leaf".into()] } else { vec![] },
                    children: child,
                }
            })
            .collect();
        let f = flatten(&mut groups.clone());
        assert!(f.members.iter().all(|m| m.len() == 1));
    }
}
