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
