//! The conversation engine: what happens to each inbound event.
//!
//! Workers feed it events from the inbound job queue. For a customer message it
//! opens or continues the contact's case and, depending on who owns the case
//! (see [`crate::conversation`]), asks the intent rules, hands off to a queue,
//! or just records the message for the agent. Everything it says goes through
//! the outbox. It holds a per-contact lock while it works so one contact's
//! messages are handled in order, one at a time, across processes.

pub mod anger;
pub mod business_hours;

pub use business_hours::BusinessHours;
