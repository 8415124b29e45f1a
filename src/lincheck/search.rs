//! The write search of one path: Wing & Gong's algorithm with Lowe's memoization (as in
//! Lowe, "Testing for linearizability", 2017, and Porcupine), extended with precedence
//! edges and optional ops.
//!
//! Invocations and completions are events on a doubly linked list in time order (at equal
//! times invocations first, which only ever allows more orders). The search walks it: at an
//! invocation it tries to linearize that op now (its predecessors are in, the model's reply
//! is the one recorded) and restarts from the head; at a completion of an op not yet
//! linearized it backtracks. A (set of linearized ops, model state) pair seen before is not
//! explored again: what follows from it does not depend on the order that led there.
//!
//! Ops with an unknown outcome have no completion event and are optional: the search places
//! one only where it changes the node (a failed write is the same as no write), and the
//! search succeeds when every required op is in, whatever optional ops are left. Every step
//! is counted against a limit: past it the answer is `Limit`, never a hang.

use std::collections::{HashMap, HashSet};

use super::model::{step, State};
use super::prepare::PathOps;

/// Where the search got stuck deepest: the op that could not be placed before its
/// completion, the ops still open there, and the states tried at that depth.
pub(crate) struct Stuck {
    pub op: usize,
    pub open: Vec<usize>,
    pub prefix: Vec<usize>,
    pub states: Vec<State>,
    depth: usize,
}

pub(crate) enum Found<R> {
    /// An order of the writes that the reads fit.
    Order,
    Stuck(Stuck),
    Limit,
    /// Every order found was rejected by `accept`; the last rejection.
    Rejected(R),
}

/// How to search: with the reads' precedence edges or without (to tell whose fault a dead
/// end is), with the memo or without (the memo can prune an order the reads would accept:
/// two orders reaching the same set and state are the same for the writes, not for the
/// reads).
#[derive(Clone, Copy)]
pub(crate) struct Mode {
    pub edges: bool,
    pub memo: bool,
}

#[derive(Clone, Copy)]
struct Event {
    time: u64,
    call: bool,
    write: usize,
}

/// Dancing-links list of events: node 0 is the head, node k+1 is event k, node m+1 the tail.
struct List {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl List {
    fn new(m: usize) -> List {
        List { next: (1..=m + 2).collect(), prev: (0..m + 2).map(|i| i.saturating_sub(1)).collect() }
    }
    fn remove(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        self.prev[n] = p;
    }
    /// Undoes `remove(x)`; removals must be undone in reverse order.
    fn restore(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        self.prev[n] = x;
    }
}

struct Bits(Vec<u64>);

impl Bits {
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
    fn flip(&mut self, i: usize) {
        self.0[i / 64] ^= 1 << (i % 64);
    }
}

/// Searches for a linearization of `ops.writes` that `accept` takes (`mode`: see `Mode`). `steps` counts across
/// calls (one budget for a whole history); past `max_steps` the answer is `Limit`. At most
/// `max_witnesses` orders are offered to `accept`.
pub(crate) fn search<R>(
    ops: &PathOps,
    max_steps: u64,
    max_witnesses: u32,
    mode: Mode,
    steps: &mut u64,
    mut accept: impl FnMut(&[usize]) -> Result<(), R>,
) -> Found<R> {
    let writes = &ops.writes;
    let mut events = Vec::with_capacity(writes.len() * 2);
    for (w, op) in writes.iter().enumerate() {
        events.push(Event { time: op.invoked, call: true, write: w });
        if op.want.is_some() {
            events.push(Event { time: op.completed.unwrap_or(u64::MAX), call: false, write: w });
        }
    }
    events.sort_by_key(|e| (e.time, !e.call, e.write));
    let m = events.len();
    let (head, tail) = (0, m + 1);
    let mut call_node = vec![0; writes.len()];
    let mut ret_node = vec![None; writes.len()];
    for (k, e) in events.iter().enumerate() {
        if e.call {
            call_node[e.write] = k + 1;
        } else {
            ret_node[e.write] = Some(k + 1);
        }
    }
    let mut list = List::new(m);
    let mut bits = Bits(vec![0; writes.len().div_ceil(64)]);
    let mut memo: HashMap<State, HashSet<Vec<u64>>> = HashMap::new();
    // (write, state before it, whether it was placed in the optional pass).
    let mut stack: Vec<(usize, State, bool)> = Vec::new();
    let mut state = State::Absent;
    let mut remaining = writes.iter().filter(|w| w.want.is_some()).count();
    let mut stuck: Option<Stuck> = None;
    let mut rejected: Option<R> = None;
    let mut offered = 0;
    // True right after a push (and at the start): a configuration not offered yet.
    let mut fresh = true;
    // Each level first tries the required ops open there, then (a second pass from the
    // head) the optional ones: so the first orders found hold only the unknown-outcome
    // writes they need, which is what the read pass most likely accepts.
    let mut optional_pass = false;
    let mut cur = list.next[head];
    loop {
        *steps += 1;
        if *steps > max_steps {
            return Found::Limit;
        }
        let mut backtrack = false;
        if remaining == 0 && fresh {
            // Every required op is in: offer the order. If the reads reject it, the search
            // goes on — placing more optional ops (a read may need an unknown write to have
            // taken effect) or backtracking.
            fresh = false;
            let order: Vec<usize> = stack.iter().map(|(w, _, _)| *w).collect();
            match accept(&order) {
                Ok(()) => return Found::Order,
                Err(r) => {
                    offered += 1;
                    if offered >= max_witnesses {
                        return Found::Rejected(r);
                    }
                    rejected = Some(r);
                }
            }
            continue;
        } else if cur == tail || !events[cur - 1].call {
            if !optional_pass {
                optional_pass = true;
                cur = list.next[head];
                continue;
            }
            if cur != tail {
                note_stuck(&mut stuck, events[cur - 1].write, &stack, state, &list, &events, cur);
            }
            backtrack = true;
        } else {
            let ev = events[cur - 1];
            if writes[ev.write].want.is_some() == optional_pass {
                cur = list.next[cur];
                continue;
            }
            {
                let op = &writes[ev.write];
                let ready = !mode.edges || op.preds.iter().all(|p| bits.get(*p));
                let (reply, after) = step(state, op.write);
                let fits = match op.want {
                    Some(want) => reply == want,
                    None => reply.took_effect(),
                };
                if ready && fits {
                    bits.flip(ev.write);
                    // A complete configuration is never pruned: orders that end alike can
                    // still differ for the reads.
                    let complete = remaining == usize::from(op.want.is_some());
                    if !mode.memo || complete || memo.entry(after).or_default().insert(bits.0.clone()) {
                        stack.push((ev.write, state, optional_pass));
                        optional_pass = false;
                        state = after;
                        list.remove(cur);
                        if let Some(r) = ret_node[ev.write] {
                            list.remove(r);
                        }
                        remaining -= usize::from(op.want.is_some());
                        cur = list.next[head];
                        fresh = true;
                        continue;
                    }
                    bits.flip(ev.write);
                }
                cur = list.next[cur];
            }
        }
        if backtrack {
            let Some((w, before, pass)) = stack.pop() else {
                return match (rejected, stuck) {
                    (Some(r), _) => Found::Rejected(r),
                    (None, Some(s)) => Found::Stuck(s),
                    // Unreachable: exhausting the search needs a dead end or a rejection.
                    (None, None) => Found::Limit,
                };
            };
            state = before;
            optional_pass = pass;
            bits.flip(w);
            if let Some(r) = ret_node[w] {
                list.restore(r);
            }
            list.restore(call_node[w]);
            remaining += usize::from(writes[w].want.is_some());
            cur = list.next[call_node[w]];
        }
    }
}

/// Remembers the deepest dead end: `write`'s completion reached with it not linearized.
fn note_stuck(stuck: &mut Option<Stuck>, write: usize, stack: &[(usize, State, bool)], state: State, list: &List, events: &[Event], cur: usize) {
    let depth = stack.len();
    match stuck {
        Some(s) if s.depth == depth && s.op == write => {
            if s.states.len() < 8 && !s.states.contains(&state) {
                s.states.push(state);
            }
        }
        Some(s) if s.depth >= depth => {}
        _ => {
            let mut open = Vec::new();
            let mut x = list.next[0];
            while x != cur {
                let e = events[x - 1];
                if e.call {
                    open.push(e.write);
                }
                x = list.next[x];
            }
            let prefix = stack[stack.len().saturating_sub(4)..].iter().map(|(w, _, _)| *w).collect();
            *stuck = Some(Stuck { op: write, open, prefix, states: vec![state], depth });
        }
    }
}
