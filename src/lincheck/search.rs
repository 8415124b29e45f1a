//! The search of one path: Wing & Gong's algorithm with Lowe's memoization (as in Lowe,
//! "Testing for linearizability", 2017, and Porcupine), extended with precedence edges
//! (session order, reads; see `prepare.rs`) and optional ops.
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
use super::prepare::SearchOp;

/// Where the search got stuck deepest: the op that could not be placed before its
/// completion, the ops still open there, the last few placed, and the states tried there.
pub(crate) struct Stuck {
    pub op: usize,
    pub open: Vec<usize>,
    pub prefix: Vec<usize>,
    pub states: Vec<State>,
    depth: usize,
}

pub(crate) enum Found {
    /// Every required op placed.
    Order,
    Stuck(Stuck),
    Limit,
}

#[derive(Clone, Copy)]
struct Event {
    time: u64,
    call: bool,
    op: usize,
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

/// Searches for an order of `ops` in which every required op gets its reply. `use_preds`
/// false ignores the precedence edges (to tell whose fault a dead end is). `steps` counts
/// across calls (one budget for a whole history); past `max_steps` the answer is `Limit`.
pub(crate) fn search(ops: &[SearchOp], use_preds: bool, max_steps: u64, steps: &mut u64) -> Found {
    let mut events = Vec::with_capacity(ops.len() * 2);
    for (o, op) in ops.iter().enumerate() {
        events.push(Event { time: op.invoked, call: true, op: o });
        if op.want.is_some() {
            events.push(Event { time: op.completed.unwrap_or(u64::MAX), call: false, op: o });
        }
    }
    events.sort_by_key(|e| (e.time, !e.call, e.op));
    let m = events.len();
    let (head, tail) = (0, m + 1);
    let mut call_node = vec![0; ops.len()];
    let mut ret_node = vec![None; ops.len()];
    for (k, e) in events.iter().enumerate() {
        if e.call {
            call_node[e.op] = k + 1;
        } else {
            ret_node[e.op] = Some(k + 1);
        }
    }
    let mut list = List::new(m);
    let mut bits = Bits(vec![0; ops.len().div_ceil(64)]);
    let mut memo: HashMap<State, HashSet<Vec<u64>>> = HashMap::new();
    // (op, state before it, whether it was placed in the optional pass).
    let mut stack: Vec<(usize, State, bool)> = Vec::new();
    let mut state = State::Absent;
    let mut remaining = ops.iter().filter(|o| o.want.is_some()).count();
    let mut stuck: Option<Stuck> = None;
    // Each level first tries the required ops open there, then (a second pass from the
    // head) the optional ones: unknown-outcome writes go in only where something needs them.
    let mut optional_pass = false;
    let mut cur = list.next[head];
    while remaining > 0 {
        *steps += 1;
        if *steps > max_steps {
            return Found::Limit;
        }
        if cur != tail && events[cur - 1].call {
            let o = events[cur - 1].op;
            let op = &ops[o];
            let eligible = op.want.is_some() != optional_pass;
            let ready = !use_preds || op.preds.iter().all(|p| bits.get(*p));
            if eligible && ready {
                let (reply, after) = step(state, op.action);
                let fits = match op.want {
                    Some(want) => reply == want,
                    None => reply.took_effect(),
                };
                if fits {
                    bits.flip(o);
                    if memo.entry(after).or_default().insert(bits.0.clone()) {
                        stack.push((o, state, optional_pass));
                        state = after;
                        list.remove(cur);
                        if let Some(r) = ret_node[o] {
                            list.remove(r);
                        }
                        remaining -= usize::from(op.want.is_some());
                        optional_pass = false;
                        cur = list.next[head];
                        continue;
                    }
                    bits.flip(o);
                }
            }
            cur = list.next[cur];
            continue;
        }
        // A completion of an op not placed yet (or the end): nothing more fits here.
        if !optional_pass {
            optional_pass = true;
            cur = list.next[head];
            continue;
        }
        if cur != tail {
            note_stuck(&mut stuck, events[cur - 1].op, &stack, state, &list, &events, cur);
        }
        let Some((o, before, pass)) = stack.pop() else {
            // Exhausted. A dead end was seen on the way (the list ends with completions).
            return stuck.map_or(Found::Limit, Found::Stuck);
        };
        state = before;
        optional_pass = pass;
        bits.flip(o);
        if let Some(r) = ret_node[o] {
            list.restore(r);
        }
        list.restore(call_node[o]);
        remaining += usize::from(ops[o].want.is_some());
        cur = list.next[call_node[o]];
    }
    Found::Order
}

/// Remembers the deepest dead end: `op`'s completion reached with it not placed.
fn note_stuck(stuck: &mut Option<Stuck>, op: usize, stack: &[(usize, State, bool)], state: State, list: &List, events: &[Event], cur: usize) {
    let depth = stack.len();
    match stuck {
        Some(s) if s.depth == depth && s.op == op => {
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
                    open.push(e.op);
                }
                x = list.next[x];
            }
            let prefix = stack[stack.len().saturating_sub(4)..].iter().map(|(o, _, _)| *o).collect();
            *stuck = Some(Stuck { op, open, prefix, states: vec![state], depth });
        }
    }
}
