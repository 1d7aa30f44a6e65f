//! The Redis backend: a placeholder until the next commit.
use crate::QueueError;
use std::time::Duration;
/// The Redis backend (not written yet).
#[derive(Debug)]
pub struct RedisStore;
impl RedisStore {
    /// Refuses: not written yet.
    pub fn open(_spec: &str, _lease: Duration) -> Result<Self, QueueError> {
        Err(QueueError::InvalidSpec(
            "the Redis backend is not written yet".into(),
        ))
    }
}
impl crate::Queue for RedisStore {
    fn enqueue(&self, _: &[crate::NewMessage]) -> Result<Vec<String>, QueueError> {
        todo!()
    }
    fn claim(&self, _: &str, _: usize, _: Duration) -> Result<Vec<crate::Job>, QueueError> {
        todo!()
    }
    fn heartbeat(&self, _: &str, _: &[&crate::Job]) -> Result<(), QueueError> {
        todo!()
    }
    fn progress(&self, _: &crate::Job, _: &[String]) -> Result<(), QueueError> {
        todo!()
    }
    fn complete(&self, _: &crate::Job) -> Result<(), QueueError> {
        todo!()
    }
    fn defer(
        &self,
        _: &crate::Job,
        _: &[String],
        _: std::time::SystemTime,
    ) -> Result<(), QueueError> {
        todo!()
    }
    fn counts(&self) -> Result<crate::QueueCounts, QueueError> {
        todo!()
    }
}
impl crate::Suppressions for RedisStore {
    fn add(&self, _: &str, _: &str) -> Result<(), QueueError> {
        todo!()
    }
    fn remove(&self, _: &str) -> Result<bool, QueueError> {
        todo!()
    }
    fn check(&self, _: &[String]) -> Result<Vec<Option<crate::Suppressed>>, QueueError> {
        todo!()
    }
    fn list(&self) -> Result<Vec<crate::Suppressed>, QueueError> {
        todo!()
    }
}
