//! Commands: one rank's share of the work of a task, and the transfers between ranks.
//!
//! Each rank builds its own command graph from the (identical) task graph. Execution commands run a chunk of a task;
//! a push sends data this rank produced to the ranks that read it; an await-push receives, for one task and buffer,
//! the whole region the local chunks read but other ranks wrote; a reduction command combines partial results.

use std::fmt;

use smallvec::SmallVec;

use crate::geometry::{GridBox, Region};
use crate::ids::{BufferId, CommandId, NodeId, ReductionId, TaskId};
use crate::task::{DependencyKind, DependencyOrigin, EpochAction};

/// Names one transfer: the task that needs the data, the buffer, and the reduction it belongs to, if any.
///
/// Every push and await-push of one (task, buffer) pair shares it, so a receiver can match incoming data to what it
/// awaits in any order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct TransferId {
    /// The consuming task.
    pub task: TaskId,
    /// The buffer.
    pub buffer: BufferId,
    /// The reduction whose partial results travel, if any.
    pub reduction: Option<ReductionId>,
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reduction {
            Some(r) => write!(f, "{}.{}.{}", self.task, self.buffer, r),
            None => write!(f, "{}.{}", self.task, self.buffer),
        }
    }
}

/// What a command does.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandKind {
    /// A hard synchronization point (mirrors an epoch task).
    Epoch {
        /// The epoch task.
        task: TaskId,
        /// What else it does.
        action: EpochAction,
    },
    /// Bounds the command graph (mirrors a horizon task).
    Horizon {
        /// The horizon task.
        task: TaskId,
    },
    /// Runs one chunk of a kernel or host task.
    Execution {
        /// The task.
        task: TaskId,
        /// The part of the task's index space this rank runs.
        chunk: GridBox,
        /// Whether this chunk folds the buffer's current value into a reduction (rank 0 only).
        initializes_reductions: bool,
    },
    /// Returns data to the application (one per rank).
    Fence {
        /// The fence task.
        task: TaskId,
    },
    /// Sends data this rank produced to other ranks.
    Push {
        /// Which transfer the data belongs to.
        transfer: TransferId,
        /// The receivers and what each gets.
        targets: Vec<(NodeId, Region)>,
    },
    /// Receives the whole region of one buffer that local chunks of one task read but other ranks wrote.
    AwaitPush {
        /// Which transfer to wait for.
        transfer: TransferId,
        /// Everything that must arrive (from one or more senders).
        region: Region,
    },
    /// Combines the partial results of a reduction from every rank, in rank order.
    Reduction {
        /// The reduction.
        reduction: ReductionId,
        /// The result buffer.
        buffer: BufferId,
        /// Whether this rank computed a partial result itself.
        has_local_contribution: bool,
    },
}

impl CommandKind {
    /// Short lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::Epoch { .. } => "epoch",
            CommandKind::Horizon { .. } => "horizon",
            CommandKind::Execution { .. } => "execution",
            CommandKind::Fence { .. } => "fence",
            CommandKind::Push { .. } => "push",
            CommandKind::AwaitPush { .. } => "await-push",
            CommandKind::Reduction { .. } => "reduction",
        }
    }
}

/// An edge to an earlier command on the same rank.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CommandDependency {
    /// The earlier command.
    pub command: CommandId,
    /// True, anti or output.
    pub kind: DependencyKind,
    /// Why.
    pub origin: DependencyOrigin,
    /// How far back from `command` an earlier sync command (horizon or epoch) lies whose completion also satisfies
    /// this edge (0: none); [`settled_by`](Self::settled_by) gives it. Set on an edge to a horizon that only stands
    /// for writers of cells this command touches, all of which completed once that older command did. The edge to
    /// the horizon stays as generated (the graph every tool shows); an executor may start the command once either
    /// completed, so that a read of a constant input need not wait for a slow host task in the horizon's front.
    /// Kept as a distance so that the edge stays 16 bytes.
    pub settled_back: u32,
}

impl CommandDependency {
    /// An edge to `command` that only that command satisfies.
    pub fn new(command: CommandId, kind: DependencyKind, origin: DependencyOrigin) -> Self {
        Self { command, kind, origin, settled_back: 0 }
    }

    /// The same edge, also satisfied once the earlier sync command `settled_by` completed; left as it is where
    /// `settled_by` is not earlier than the edge's command or lies more than `u32::MAX` commands back.
    pub fn settled_by_command(mut self, settled_by: CommandId) -> Self {
        self.settled_back = self.command.0.checked_sub(settled_by.0).and_then(|d| u32::try_from(d).ok()).unwrap_or(0);
        self
    }

    /// The earlier sync command whose completion also satisfies this edge, if any (see `settled_back`).
    pub fn settled_by(&self) -> Option<CommandId> {
        (self.settled_back != 0).then(|| CommandId(self.command.0 - self.settled_back as u64))
    }
}

/// A node of one rank's command graph.
#[derive(Debug)]
pub struct Command {
    /// Id, unique on its rank.
    pub id: CommandId,
    /// The task it was generated for.
    pub task: TaskId,
    /// What it does.
    pub kind: CommandKind,
    /// Edges to earlier commands.
    pub dependencies: SmallVec<[CommandDependency; 4]>,
}

impl Clone for Command {
    /// Copies the dependencies as one slice (they are `Copy`): the runtime clones every command it queues, and the
    /// derived clone went through `SmallVec`'s element-by-element `extend`.
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            task: self.task,
            kind: self.kind.clone(),
            dependencies: SmallVec::from_slice(&self.dependencies),
        }
    }
}

impl Command {
    /// Whether the command has a dependency on `other`.
    pub fn depends_on(&self, other: CommandId) -> bool {
        self.dependencies.iter().any(|d| d.command == other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settling_command_is_kept_as_a_distance_back_where_it_fits() {
        let edge = CommandDependency::new(CommandId(10), DependencyKind::True, DependencyOrigin::Dataflow);
        assert_eq!(std::mem::size_of::<CommandDependency>(), 16);
        assert_eq!(edge.settled_by(), None);
        assert_eq!(edge.settled_by_command(CommandId(4)).settled_by(), Some(CommandId(4)));
        assert_eq!(edge.settled_by_command(CommandId(0)).settled_by(), Some(CommandId(0)));
        // Not earlier, or too far back: no settling command.
        assert_eq!(edge.settled_by_command(CommandId(10)).settled_by(), None);
        assert_eq!(edge.settled_by_command(CommandId(12)).settled_by(), None);
        let far = CommandDependency::new(CommandId(1 << 40), DependencyKind::True, DependencyOrigin::Dataflow);
        assert_eq!(far.settled_by_command(CommandId(1)).settled_by(), None);
        assert_eq!(far.settled_by_command(CommandId((1 << 40) - 7)).settled_by(), Some(CommandId((1 << 40) - 7)));
    }
}
