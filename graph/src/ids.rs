//! Strong id types that print the way Celerity's do (`T3`, `B0`, `N1`, `C12`), in logs, DOT dumps and errors alike.

/// Defines a `Copy` id newtype over `u64` whose `Display` is `prefix` followed by the number.
#[macro_export]
macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self, f)
            }
        }

        impl $name {
            /// The raw number.
            pub fn get(self) -> u64 {
                self.0
            }
        }
    };
}

define_id!(
    /// A task in the task graph; ids grow in submission order and are the same on every rank.
    TaskId,
    "T"
);
define_id!(
    /// A buffer, the same on every rank.
    BufferId,
    "B"
);
define_id!(
    /// A host object (state that host tasks touch through side effects).
    HostObjectId,
    "H"
);
define_id!(
    /// A rank (an MPI process), called a node in Celerity.
    NodeId,
    "N"
);
define_id!(
    /// A command in one rank's command graph; ids grow in generation order.
    CommandId,
    "C"
);
define_id!(
    /// A reduction (one per reduced buffer per task).
    ReductionId,
    "R"
);
define_id!(
    /// A group of collective host tasks that run in order on a communicator of their own.
    CollectiveGroupId,
    "CG"
);

/// Hashes one id (a `u64`) with a single multiplication by an odd constant near 2⁶⁴/φ, which spreads consecutive ids
/// over the high bits a hash table probes by: ids are small dense numbers, not attacker-chosen keys, so the
/// general-purpose hasher's extra mixing buys nothing on lookups that run several times per task.
#[derive(Clone, Copy, Default, Debug)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by the id types (they hash one `u64`); kept correct for any other key.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A hash map keyed by ids, hashed with [`IdHasher`].
pub type IdMap<K, V> = hashbrown::HashMap<K, V, std::hash::BuildHasherDefault<IdHasher>>;
