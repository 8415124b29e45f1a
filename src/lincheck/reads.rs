//! The read pass: given an order of a path's writes, can every session's reads be placed
//! in it? ZooKeeper serves a read from the local replica, so it may be stale, but a session
//! never goes back in time (FIFO client order): each read returns one of the states of the
//! order, at a position no earlier than what the session already observed (its earlier
//! completed writes and reads on the path), and that state's writes were all invoked before
//! the read completed. A failed write changed nothing, so the order found may have put it
//! anywhere that gives its reply; the pass moves it to the earliest state that gives its
//! reply and fits real time against the writes that took effect (real time between two
//! failed writes is not re-checked: neither changes the node). Each read takes the earliest position that fits: that leaves the
//! most room for the session's later ops, so if the earliest does not lead to a fit, no
//! later one does.

use super::error::Violation;
use super::history::Entry;
use super::model::{step, State};
use super::prepare::{PathOps, SessionOp};

/// Checks every session's ops on the path against `order` (write ids).
pub(crate) fn check_reads(history: &[Entry], ops: &PathOps, order: &[usize]) -> Result<(), Box<Violation>> {
    // states[k]: the node after the first k writes of the order. Over the writes that took
    // effect among them: invoked_by[k], the latest invocation; done_after[k], the earliest
    // completion of those at k or later.
    let mut states = Vec::with_capacity(order.len() + 1);
    let mut invoked_by = Vec::with_capacity(order.len() + 1);
    states.push(State::Absent);
    invoked_by.push(0u64);
    let mut position = vec![None; ops.writes.len()];
    let mut effective = Vec::with_capacity(order.len());
    for (k, &w) in order.iter().enumerate() {
        let (reply, after) = step(states[k], ops.writes[w].write);
        states.push(after);
        effective.push(reply.took_effect());
        let invoked = if reply.took_effect() { ops.writes[w].invoked } else { 0 };
        invoked_by.push(invoked_by[k].max(invoked));
        position[w] = Some(k);
    }
    let mut done_after = vec![u64::MAX; order.len() + 1];
    for k in (0..order.len()).rev() {
        let done = if effective[k] { ops.writes[order[k]].completed.unwrap_or(u64::MAX) } else { u64::MAX };
        done_after[k] = done_after[k + 1].min(done);
    }
    for session in &ops.sessions {
        // The session has observed states[..observed]: it may not see an earlier one.
        let mut observed = 0;
        for op in session {
            match *op {
                SessionOp::Write(w) => {
                    let Some(p) = position[w] else { continue };
                    let wop = &ops.writes[w];
                    if effective[p] {
                        if p < observed {
                            let why = format!("a session's write is ordered at {p}, before state {observed} it had already observed");
                            return Err(Violation::read(history, &ops.path, &why, vec![wop.entry], Vec::new()));
                        }
                        observed = p + 1;
                        continue;
                    }
                    // A failed write changed nothing: it may sit at any state of the order
                    // that gives its reply and fits real time against the writes that took
                    // effect; take the earliest one the session may still see.
                    let (Some(want), Some(completed)) = (wop.want, wop.completed) else { continue };
                    let fit = (observed..states.len())
                        .take_while(|q| invoked_by[*q] <= completed)
                        .find(|q| done_after[*q] >= wop.invoked && step(states[*q], wop.write).0 == want);
                    match fit {
                        Some(q) => observed = q,
                        None => return Err(stale(history, ops, order, &states, observed, wop.entry)),
                    }
                }
                SessionOp::Read(r) => {
                    let read = &ops.reads[r];
                    let fit = (observed..states.len())
                        .take_while(|s| invoked_by[*s] <= read.completed)
                        .find(|s| states[*s] == read.seen);
                    match fit {
                        Some(s) => observed = s,
                        None => return Err(stale(history, ops, order, &states, observed, read.entry)),
                    }
                }
            }
        }
    }
    Ok(())
}

fn stale(history: &[Entry], ops: &PathOps, order: &[usize], states: &[State], observed: usize, entry: usize) -> Box<Violation> {
    let why = format!(
        "entry #{entry} got a reply that fits no state of the write order its session may still see (it had observed state {observed}; a read sees only states whose writes were invoked before it completed)"
    );
    // The read, and the writes around the position it needed.
    let from = observed.saturating_sub(2);
    let mut ops_shown: Vec<usize> = order[from.min(order.len())..(observed + 2).min(order.len())].iter().map(|w| ops.writes[*w].entry).collect();
    ops_shown.push(entry);
    let shown = states[from..(observed + 3).min(states.len())].iter().enumerate().map(|(k, s)| format!("[{}] {}", from + k, ops.data.show(*s))).collect();
    Violation::read(history, &ops.path, &why, ops_shown, shown)
}
