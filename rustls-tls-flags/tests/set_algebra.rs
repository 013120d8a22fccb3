//! `FlagSet` operations and the view's set queries (TF-9: any number of flags
//! in one extension).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use rustls_tls_flags::{decode, Flag, FlagSet};

fn flag(n: u16) -> Flag {
    Flag::new(n).unwrap()
}

fn set(numbers: &[u16]) -> FlagSet {
    numbers.iter().map(|n| flag(*n)).collect()
}

fn numbers(set: &FlagSet) -> Vec<u16> {
    set.iter().map(Flag::get).collect()
}

fn hash(set: &FlagSet) -> u64 {
    let mut hasher = DefaultHasher::new();
    set.hash(&mut hasher);
    hasher.finish()
}

#[test]
fn tf9_insert_remove_contains_len() {
    let mut s = FlagSet::new();
    assert!(s.is_empty());
    assert_eq!(s.len(), 0);
    assert_eq!(s.highest(), None);

    assert!(s.insert(flag(80)));
    assert!(!s.insert(flag(80)), "second insert reports presence");
    assert!(s.insert(flag(0)));
    assert!(s.insert(Flag::MAX));
    assert_eq!(s.len(), 3);
    assert!(s.contains(flag(80)) && s.contains(flag(0)) && s.contains(Flag::MAX));
    assert!(!s.contains(flag(1)));
    assert_eq!(s.highest(), Some(Flag::MAX));
    assert_eq!(numbers(&s), [0, 80, 2039]);

    assert!(s.remove(Flag::MAX));
    assert!(!s.remove(Flag::MAX), "second remove reports absence");
    assert_eq!(s.highest(), Some(flag(80)));
    assert_eq!(s.as_bytes().len(), 11);
    assert!(s.remove(flag(0)) && s.remove(flag(80)));
    assert!(s.is_empty());
    assert!(s.as_bytes().is_empty());
}

#[test]
fn tf9_iteration_is_ascending() {
    let s = set(&[2039, 23, 5, 3, 80, 0, 7, 8]);
    assert_eq!(numbers(&s), [0, 3, 5, 7, 8, 23, 80, 2039]);
    assert_eq!((&s).into_iter().count(), 8);
}

#[test]
fn union_intersection_difference() {
    let a = set(&[1, 5, 80, 2039]);
    let b = set(&[5, 9, 80]);
    assert_eq!(numbers(&a.union(&b)), [1, 5, 9, 80, 2039]);
    assert_eq!(numbers(&a.intersection(&b)), [5, 80]);
    assert_eq!(numbers(&a.difference(&b)), [1, 2039]);
    assert_eq!(numbers(&b.difference(&a)), [9]);
    assert!(a.difference(&a).is_empty());
    assert_eq!(a.union(&FlagSet::new()), a);
    assert!(a.intersection(&FlagSet::new()).is_empty());
}

#[test]
fn subsets() {
    let a = set(&[5, 80]);
    let b = set(&[1, 5, 80, 2039]);
    assert!(a.is_subset(&b));
    assert!(!b.is_subset(&a));
    assert!(a.is_subset(&a));
    assert!(FlagSet::new().is_subset(&a));
    assert!(!a.is_subset(&FlagSet::new()));
}

#[test]
fn equality_and_hash_ignore_history() {
    let mut a = set(&[3, 2039]);
    a.remove(Flag::MAX);
    let b = set(&[3]);
    assert_eq!(a, b);
    assert_eq!(hash(&a), hash(&b));
    assert_eq!(FlagSet::default(), FlagSet::new());
}

#[test]
fn from_array_and_extend() {
    let mut s = FlagSet::from([flag(3), flag(1)]);
    s.extend([flag(2), flag(3)]);
    assert_eq!(numbers(&s), [1, 2, 3]);
}

#[test]
fn tf9_view_queries() {
    // {3, 5, 23}
    let view = decode(&[0x03, 0x28, 0x00, 0x80]).unwrap();
    assert!(!view.is_empty());
    assert_eq!(view.len(), 3);
    assert_eq!(view.highest(), Some(flag(23)));
    assert_eq!(view.as_bytes(), &[0x28, 0x00, 0x80]);
    assert!(view.is_subset_of(&set(&[3, 5, 23, 80])));
    assert!(!view.is_subset_of(&set(&[3, 5])));
    assert_eq!(view.first_not_in(&set(&[3, 5])), Some(flag(23)));
    assert_eq!(view.first_not_in(&set(&[5])), Some(flag(3)));
    assert_eq!(view.first_not_in(&FlagSet::new()), Some(flag(3)));
    assert_eq!(view.first_not_in(&set(&[3, 5, 23])), None);
    assert_eq!(view.to_set(), set(&[3, 5, 23]));
    assert_eq!(FlagSet::from(view), set(&[3, 5, 23]));
    assert!(view == set(&[3, 5, 23]));
    assert!(view != set(&[3, 5]));
    assert_eq!(
        view.into_iter().map(Flag::get).collect::<Vec<_>>(),
        [3, 5, 23]
    );
}
