//! The scheduler's interface (`scheduler` on the bus): only the conductor asks it.

use serde::{Deserialize, Serialize};

use super::{RequestSpec, Selection};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SelectDestinations {
    pub specs: Vec<RequestSpec>,
}

bus::interface! {
    /// The filter scheduler.
    pub interface Scheduler {
        topic: "scheduler",
        version: (1, 0),
        client: SchedulerClient,
        handler: SchedulerHandler,
        methods: {
            /// A host for each spec, claimed in the ledger; NoValidHost when any does not fit.
            call select_destinations(SelectDestinations) -> Vec<Selection>;
        }
    }
}
