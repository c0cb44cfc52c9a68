//! A bounded FIFO of inner packets in recycled buffers: steady state never allocates.

use std::collections::VecDeque;

/// Inner packets waiting to be sealed, each in its own `Vec<u8>`; sent packets' buffers go to a
/// free list and are reused by the next `push`.
#[derive(Debug, Default)]
pub(crate) struct PacketQueue {
    queued: VecDeque<Vec<u8>>,
    free: Vec<Vec<u8>>,
    limit: usize,
}

impl PacketQueue {
    pub(crate) fn new(limit: usize) -> Self {
        PacketQueue {
            queued: VecDeque::with_capacity(limit),
            free: Vec::with_capacity(limit),
            limit,
        }
    }

    /// Copies `packet` into a recycled buffer; `false` when the queue is full.
    pub(crate) fn push(&mut self, packet: &[u8]) -> bool {
        if self.queued.len() >= self.limit {
            return false;
        }
        let mut buf = self.free.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.queued.push_back(buf);
        true
    }

    pub(crate) fn front(&self) -> Option<&[u8]> {
        self.queued.front().map(Vec::as_slice)
    }

    /// Removes the front packet and keeps its buffer for reuse.
    pub(crate) fn pop_recycle(&mut self) {
        if let Some(buf) = self.queued.pop_front() {
            self.free.push(buf);
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queued.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        while !self.queued.is_empty() {
            self.pop_recycle();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_come_out_in_order() {
        let mut q = PacketQueue::new(4);
        q.push(b"one");
        q.push(b"two");

        assert_eq!(q.front(), Some(&b"one"[..]));
        q.pop_recycle();
        assert_eq!(q.front(), Some(&b"two"[..]));
    }

    #[test]
    fn a_full_queue_refuses_more() {
        let mut q = PacketQueue::new(1);

        assert!(q.push(b"a"));
        assert!(!q.push(b"b"));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn buffers_are_recycled() {
        let mut q = PacketQueue::new(2);
        q.push(&[0u8; 1500]);
        let first = q.front().map(<[u8]>::as_ptr);
        q.pop_recycle();

        q.push(b"small");

        assert_eq!(q.front().map(<[u8]>::as_ptr), first);
    }
}
