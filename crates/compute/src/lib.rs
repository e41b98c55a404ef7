//! Nova v2.1: the compute API, the scheduler, the conductor and the compute
//! hosts with their virt drivers.

pub mod scheduler;
