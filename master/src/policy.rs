//! The arbiter's replacement policy as a pure function: given a snapshot of the
//! workers and singletons, which children to start and which to stop this turn.
//!
//! Invariants the plan keeps (the unit tests below walk through them):
//! - singletons are always present, each subject to its own back-off;
//! - workers are brought to `target`; a worker and the replacement taking over from
//!   it fill one place, so a crash elsewhere during a replacement is made good at once;
//! - stale workers (older generation, or asking to retire) are replaced one slot at
//!   a time, and a worker is asked to stop only once its replacement reported ready:
//!   a replacement that never comes up leaves the old worker serving;
//! - a replacement that was itself told to stop (a second HUP) takes nobody down;
//! - a `--reuse-port` lane is never left without a ready worker while any worker
//!   is wanted: its new owner is started first and retires the old ones when ready.

use nix::unistd::Pid;

use crate::child::Role;

/// One worker, as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerView {
    pub pid: Pid,
    pub number: usize,
    pub generation: u64,
    /// Reported ready at least once.
    pub ready: bool,
    /// Neither asked to stop nor draining on its own.
    pub serving: bool,
    /// Asks for a replacement whatever its generation (max-requests, memory).
    pub retire: bool,
    /// `--reuse-port` lanes it accepts on.
    pub lanes: Vec<usize>,
    /// Workers it stops once it is ready.
    pub replaces: Vec<Pid>,
}

impl WorkerView {
    fn stale(&self, generation: u64) -> bool {
        self.generation < generation || self.retire
    }
}

/// One singleton role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingletonView {
    /// A child of this role exists (in whatever state).
    pub present: bool,
    /// Its back-off allows a spawn now.
    pub may_spawn: bool,
}

/// Everything the policy decides from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub workers: Vec<WorkerView>,
    pub singletons: Vec<SingletonView>,
    /// The current configuration generation (bumped by each HUP).
    pub generation: u64,
    /// Workers wanted.
    pub target: usize,
    /// `--reuse-port` lanes (0: shared sockets only).
    pub lane_count: usize,
    /// The worker back-off allows a spawn now.
    pub workers_may_spawn: bool,
    /// A HUP is being rolled out.
    pub reloading: bool,
}

/// What the arbiter does, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fork a child; a worker accepts on `lanes` and stops `replaces` once ready.
    Spawn {
        role: Role,
        lanes: Vec<usize>,
        replaces: Vec<Pid>,
    },
    /// Ask a worker to drain and exit; nobody waits to take over from it any more.
    Stop(Pid),
    /// Every worker is of the current generation and ready: the reload is done.
    Reloaded,
}

/// The actions that bring the children towards the snapshot's target.
pub fn plan(mut s: Snapshot) -> Vec<Action> {
    let mut actions = Vec::new();
    for (i, one) in s.singletons.iter().enumerate() {
        if !one.present && one.may_spawn {
            actions.push(spawn(Role::Singleton(i), Vec::new(), Vec::new()));
        }
    }
    for pid in taken_over(&s.workers) {
        stop(&mut s.workers, pid);
        actions.push(Action::Stop(pid));
    }
    let gen = s.generation;
    let serving: Vec<&WorkerView> = s.workers.iter().filter(|w| w.serving).collect();
    let stale = serving.iter().filter(|w| w.stale(gen)).count();
    let fresh = serving.len() - stale;
    let fresh_ready = serving.iter().filter(|w| !w.stale(gen) && w.ready).count();
    let booting = fresh - fresh_ready;
    let being_replaced = serving
        .iter()
        .filter(|w| serving.iter().any(|r| r.replaces.contains(&w.pid)))
        .count();
    let filled = fresh + stale - being_replaced;
    let may_spawn = s.workers_may_spawn;
    if filled < s.target {
        if may_spawn {
            let mut planned: Vec<Vec<usize>> = Vec::new();
            for left in (1..=s.target - filled).rev() {
                let lanes = lanes_for_new(&s.workers, &planned, s.lane_count, left);
                planned.push(lanes.clone());
                actions.push(spawn(Role::Worker, lanes, Vec::new()));
            }
        }
    } else if booting > 0 {
        // One slot in transition at a time: wait for it to become ready.
    } else if stale > 0 {
        if fresh_ready + stale > s.target {
            actions.extend(shrink_one(&s, |w| w.stale(gen), may_spawn));
        } else if may_spawn {
            actions.extend(replace_one_stale(&s.workers, gen));
        }
    } else if fresh > s.target {
        actions.extend(shrink_one(&s, |_| true, may_spawn));
    }
    if s.reloading && stale == 0 && booting == 0 {
        actions.push(Action::Reloaded);
    }
    actions
}

fn spawn(role: Role, lanes: Vec<usize>, replaces: Vec<Pid>) -> Action {
    Action::Spawn {
        role,
        lanes,
        replaces,
    }
}

/// The workers that ready replacements take over from. Only a replacement that is
/// itself still serving takes over: one that was told to stop meanwhile (a second
/// HUP) must not take the workers it was meant to replace down with it.
fn taken_over(workers: &[WorkerView]) -> Vec<Pid> {
    let mut pids: Vec<Pid> = Vec::new();
    for w in workers.iter().filter(|w| w.ready && w.serving) {
        for &pid in &w.replaces {
            if !pids.contains(&pid) && workers.iter().any(|v| v.pid == pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// What `Action::Stop` does to the snapshot, so later decisions of the same turn
/// see it.
fn stop(workers: &mut [WorkerView], pid: Pid) {
    for w in workers.iter_mut() {
        w.replaces.retain(|p| *p != pid);
        if w.pid == pid {
            w.serving = false;
            w.replaces.clear();
        }
    }
}

/// The replacement of the highest-numbered stale worker: it accepts on the same
/// lanes and retires that worker once ready.
fn replace_one_stale(workers: &[WorkerView], gen: u64) -> Option<Action> {
    workers
        .iter()
        .filter(|w| w.serving && w.stale(gen))
        .max_by_key(|w| w.number)
        .map(|w| spawn(Role::Worker, w.lanes.clone(), vec![w.pid]))
}

/// One fewer serving worker among those matching `pick` (the highest-numbered).
/// A worker whose lanes nobody else serves is not simply stopped, which would
/// strand connections the kernel hashes to them: a worker taking its lanes and a
/// partner's is started first, and both retire when it is ready.
fn shrink_one(s: &Snapshot, pick: impl Fn(&WorkerView) -> bool, may_spawn: bool) -> Option<Action> {
    let victim = s
        .workers
        .iter()
        .filter(|w| w.serving && pick(w))
        // A worker still booting goes first: stopping a ready one for it could
        // leave nobody serving.
        .max_by_key(|w| (!w.ready, w.number))?;
    let others = || {
        s.workers
            .iter()
            .filter(|w| w.serving && w.pid != victim.pid)
    };
    let orphaned: Vec<usize> = victim
        .lanes
        .iter()
        .copied()
        .filter(|l| !others().any(|w| w.ready && w.lanes.contains(l)))
        .collect();
    // WINCH (no workers wanted): nothing is left to serve a lane anyway.
    if orphaned.is_empty() || s.target == 0 {
        return Some(Action::Stop(victim.pid));
    }
    let partner = others().min_by_key(|w| (!pick(w), w.lanes.len()))?;
    if !may_spawn {
        return None;
    }
    let mut lanes = partner.lanes.clone();
    lanes.extend(orphaned);
    lanes.sort_unstable();
    lanes.dedup();
    Some(spawn(Role::Worker, lanes, vec![victim.pid, partner.pid]))
}

/// Lanes for a worker spawned to add capacity, `left` spawns (this one included)
/// still to come, `planned` the lanes of those spawned before it this turn: its
/// share of the lanes nobody serves, or else the least-served lane.
fn lanes_for_new(
    workers: &[WorkerView],
    planned: &[Vec<usize>],
    lane_count: usize,
    left: usize,
) -> Vec<usize> {
    if lane_count == 0 {
        return Vec::new();
    }
    let mut served = vec![0usize; lane_count];
    let serving = workers.iter().filter(|w| w.serving).map(|w| &w.lanes);
    for lanes in serving.chain(planned) {
        for &l in lanes {
            if let Some(s) = served.get_mut(l) {
                *s += 1;
            }
        }
    }
    let idle: Vec<usize> = (0..lane_count).filter(|&l| served[l] == 0).collect();
    if idle.is_empty() {
        let least = (0..lane_count).min_by_key(|&l| served[l]).unwrap_or(0);
        return vec![least];
    }
    let share = idle.len().div_ceil(left.max(1));
    idle.into_iter().take(share).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A master in miniature: the policy's actions applied to plain workers the way
    /// the arbiter applies them to processes, and the test playing the children.
    struct World {
        s: Snapshot,
        next_pid: i32,
    }

    fn pid(n: i32) -> Pid {
        Pid::from_raw(n)
    }

    impl World {
        fn new(target: usize, lane_count: usize) -> World {
            World {
                s: Snapshot {
                    workers: Vec::new(),
                    singletons: Vec::new(),
                    generation: 1,
                    target,
                    lane_count,
                    workers_may_spawn: true,
                    reloading: false,
                },
                next_pid: 100,
            }
        }

        /// Starts from `target` ready workers of the current generation.
        fn steady(target: usize, lane_count: usize) -> World {
            let mut w = World::new(target, lane_count);
            w.turn();
            w.all_ready();
            assert_eq!(w.turn(), vec![]);
            w
        }

        fn turn(&mut self) -> Vec<Action> {
            let actions = plan(self.s.clone());
            for a in &actions {
                match a {
                    Action::Spawn {
                        role: Role::Worker,
                        lanes,
                        replaces,
                    } => {
                        let number = (0..)
                            .find(|n| !self.s.workers.iter().any(|w| w.number == *n))
                            .unwrap_or(0);
                        self.next_pid += 1;
                        self.s.workers.push(WorkerView {
                            pid: pid(self.next_pid),
                            number,
                            generation: self.s.generation,
                            ready: false,
                            serving: true,
                            retire: false,
                            lanes: lanes.clone(),
                            replaces: replaces.clone(),
                        });
                    }
                    Action::Spawn { .. } => {}
                    Action::Stop(p) => stop(&mut self.s.workers, *p),
                    Action::Reloaded => self.s.reloading = false,
                }
            }
            actions
        }

        fn hup(&mut self) {
            self.s.generation += 1;
            self.s.reloading = true;
        }

        fn ready(&mut self, p: Pid) {
            self.worker(p).ready = true;
        }

        fn all_ready(&mut self) {
            for w in &mut self.s.workers {
                w.ready = true;
            }
        }

        /// The child exited (the reaper's view).
        fn exit(&mut self, p: Pid) {
            self.s.workers.retain(|w| w.pid != p);
            for w in &mut self.s.workers {
                w.replaces.retain(|r| *r != p);
            }
        }

        /// Every worker that was told to stop has drained and exited.
        fn reap_stopped(&mut self) {
            self.s.workers.retain(|w| w.serving);
        }

        fn worker(&mut self, p: Pid) -> &mut WorkerView {
            self.s
                .workers
                .iter_mut()
                .find(|w| w.pid == p)
                .expect("no such worker")
        }

        fn newest(&self) -> Pid {
            pid(self.next_pid)
        }

        fn serving_ready(&self) -> Vec<Pid> {
            let on = self.s.workers.iter().filter(|w| w.serving && w.ready);
            on.map(|w| w.pid).collect()
        }

        fn lanes_served(&self) -> Vec<usize> {
            let mut lanes: Vec<usize> = self
                .s
                .workers
                .iter()
                .filter(|w| w.serving && w.ready)
                .flat_map(|w| w.lanes.clone())
                .collect();
            lanes.sort_unstable();
            lanes.dedup();
            lanes
        }
    }

    fn spawns(actions: &[Action]) -> Vec<(Vec<usize>, Vec<Pid>)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Spawn {
                    role: Role::Worker,
                    lanes,
                    replaces,
                } => Some((lanes.clone(), replaces.clone())),
                _ => None,
            })
            .collect()
    }

    fn stops(actions: &[Action]) -> Vec<Pid> {
        let only = actions.iter().filter_map(|a| match a {
            Action::Stop(p) => Some(*p),
            _ => None,
        });
        only.collect()
    }

    #[test]
    fn start_up_spawns_the_target_and_then_nothing() {
        let mut w = World::new(3, 0);
        assert_eq!(spawns(&w.turn()).len(), 3);
        // Booting workers fill their places: nothing more is spawned meanwhile.
        assert_eq!(w.turn(), vec![]);
        w.all_ready();
        assert_eq!(w.turn(), vec![]);
        assert_eq!(w.serving_ready().len(), 3);
    }

    #[test]
    fn singletons_are_respawned_within_their_back_off() {
        let mut s = World::steady(1, 0).s;
        s.singletons = vec![
            SingletonView {
                present: true,
                may_spawn: true,
            },
            SingletonView {
                present: false,
                may_spawn: false,
            },
        ];
        assert_eq!(plan(s.clone()), vec![]);
        s.singletons[1].may_spawn = true;
        assert_eq!(
            plan(s),
            vec![spawn(Role::Singleton(1), Vec::new(), Vec::new())]
        );
    }

    #[test]
    fn a_hup_replaces_one_slot_at_a_time_once_each_replacement_is_ready() {
        let mut w = World::steady(3, 0);
        let old = w.serving_ready();
        w.hup();
        let highest = w.s.workers.iter().max_by_key(|x| x.number).unwrap().pid;
        let mut stopped = Vec::new();
        let mut first = true;
        for _ in 0..20 {
            if !w.s.reloading {
                break;
            }
            let a = w.turn();
            if first {
                // The highest-numbered stale worker goes first.
                assert_eq!(spawns(&a), vec![(vec![], vec![highest])]);
                first = false;
            }
            assert!(w.serving_ready().len() >= 3, "capacity dropped: {a:?}");
            stopped.extend(stops(&a));
            let booting: Vec<Pid> =
                w.s.workers
                    .iter()
                    .filter(|x| x.serving && !x.ready)
                    .map(|x| x.pid)
                    .collect();
            assert!(booting.len() <= 1, "two slots in transition");
            if let Some(&b) = booting.first() {
                // Until the replacement is ready, nothing else moves.
                assert_eq!(w.turn(), vec![]);
                w.ready(b);
            }
            w.reap_stopped();
            assert!(stopped.len() <= 3);
        }
        assert!(!w.s.reloading, "the reload never finished");
        stopped.sort();
        assert_eq!(stopped, old);
        assert_eq!(w.turn(), vec![]);
        assert_eq!(w.serving_ready().len(), 3);
        assert!(w.s.workers.iter().all(|x| x.generation == 2));
    }

    #[test]
    fn a_replacement_that_never_gets_ready_leaves_the_old_worker_serving() {
        let mut w = World::steady(1, 0);
        let old = w.serving_ready();
        w.hup();
        for _ in 0..5 {
            let a = w.turn();
            assert_eq!(spawns(&a), vec![(vec![], old.clone())]);
            let failed = w.newest();
            for _ in 0..3 {
                assert_eq!(w.turn(), vec![]);
            }
            assert_eq!(w.serving_ready(), old);
            // It dies while booting; the back-off lets the next try through.
            w.exit(failed);
        }
        assert!(w.s.reloading, "a reload that never came up is not done");
    }

    #[test]
    fn ttin_adds_a_worker_and_ttou_stops_the_highest_numbered() {
        let mut w = World::steady(3, 0);
        w.s.target = 4;
        assert_eq!(spawns(&w.turn()), vec![(vec![], vec![])]);
        w.all_ready();
        w.s.target = 2;
        let highest = w.s.workers.iter().max_by_key(|x| x.number).unwrap().pid;
        assert_eq!(w.turn(), vec![Action::Stop(highest)]);
        let a = w.turn();
        assert_eq!(stops(&a).len(), 1);
        assert_eq!(w.turn(), vec![]);
        assert_eq!(w.serving_ready().len(), 2);
    }

    #[test]
    fn ttou_during_a_boot_waits_for_the_boot_before_stopping_one() {
        let mut w = World::steady(2, 0);
        w.s.target = 3;
        w.turn();
        let booting = w.newest();
        w.s.target = 2;
        // One slot in transition at a time: the boot finishes first.
        assert_eq!(w.turn(), vec![]);
        w.ready(booting);
        assert_eq!(w.turn(), vec![Action::Stop(booting)]);
        assert_eq!(w.serving_ready().len(), 2);
    }

    #[test]
    fn a_worker_past_max_requests_is_replaced_before_it_stops() {
        let mut w = World::steady(2, 0);
        let tired = w.s.workers[0].pid;
        w.worker(tired).retire = true;
        assert_eq!(spawns(&w.turn()), vec![(vec![], vec![tired])]);
        assert_eq!(w.turn(), vec![]);
        w.ready(w.newest());
        // No reload is going on: nothing is announced.
        assert_eq!(w.turn(), vec![Action::Stop(tired)]);
        assert_eq!(w.serving_ready().len(), 2);
        assert_eq!(w.turn(), vec![]);
    }

    #[test]
    fn a_crash_during_a_replacement_is_made_good_at_once() {
        let mut w = World::steady(2, 0);
        w.hup();
        w.turn();
        let crashed = w.s.workers[0].pid;
        w.exit(crashed);
        assert_eq!(spawns(&w.turn()), vec![(vec![], vec![])]);
    }

    #[test]
    fn a_second_hup_during_a_slow_boot_never_leaves_no_worker() {
        let mut w = World::steady(1, 0);
        let old = w.serving_ready()[0];
        w.hup();
        assert_eq!(spawns(&w.turn()), vec![(vec![], vec![old])]);
        let first = w.newest();
        w.hup();
        // The first replacement is stale before it is ready: it is stopped, not
        // the worker that serves.
        assert_eq!(w.turn(), vec![Action::Stop(first)]);
        assert_eq!(w.serving_ready(), vec![old]);
        // Getting ready now, it takes nobody down with it.
        w.ready(first);
        let a = w.turn();
        assert_eq!(spawns(&a), vec![(vec![], vec![old])]);
        assert!(stops(&a).is_empty());
        assert_eq!(w.serving_ready(), vec![old]);
        let second = w.newest();
        w.exit(first);
        assert_eq!(w.turn(), vec![]);
        assert_eq!(w.serving_ready(), vec![old]);
        w.ready(second);
        assert_eq!(w.turn(), vec![Action::Stop(old), Action::Reloaded]);
        assert_eq!(w.serving_ready(), vec![second]);
    }

    #[test]
    fn back_off_holds_spawns_but_not_stops() {
        let mut w = World::steady(2, 0);
        w.s.workers_may_spawn = false;
        let a = w.s.workers[0].pid;
        w.exit(a);
        assert_eq!(w.turn(), vec![]);
        w.hup();
        // Stale workers are not replaced while spawning is held back…
        assert_eq!(w.turn(), vec![]);
        // …but one too many is still stopped.
        w.s.target = 0;
        assert_eq!(stops(&w.turn()).len(), 1);
        w.s.workers_may_spawn = true;
        w.s.target = 1;
        w.reap_stopped();
        assert_eq!(spawns(&w.turn()).len(), 1);
    }

    #[test]
    fn reuse_port_lanes_are_shared_out_and_handed_over() {
        let mut w = World::new(2, 4);
        let a = w.turn();
        assert_eq!(spawns(&a), vec![(vec![0, 1], vec![]), (vec![2, 3], vec![])]);
        w.all_ready();
        // A replacement takes the lanes of the worker it replaces.
        w.hup();
        let b = w.s.workers[1].pid;
        assert_eq!(spawns(&w.turn()), vec![(vec![2, 3], vec![b])]);
        w.ready(w.newest());
        let a = w.turn();
        assert_eq!(stops(&a), vec![b]);
        assert_eq!(w.lanes_served(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn shrinking_hands_orphaned_lanes_over_before_stopping() {
        let mut w = World::new(2, 4);
        w.turn();
        w.all_ready();
        let (a, b) = (w.s.workers[0].pid, w.s.workers[1].pid);
        w.s.target = 1;
        // Stopping `b` would strand lanes 2 and 3: a worker taking all four
        // starts first, and both old workers retire once it is ready.
        assert_eq!(spawns(&w.turn()), vec![(vec![0, 1, 2, 3], vec![b, a])]);
        assert_eq!(w.turn(), vec![]);
        assert_eq!(w.lanes_served(), vec![0, 1, 2, 3]);
        w.ready(w.newest());
        assert_eq!(stops(&w.turn()), vec![b, a]);
        assert_eq!(w.lanes_served(), vec![0, 1, 2, 3]);
        w.reap_stopped();
        assert_eq!(w.turn(), vec![]);
    }

    #[test]
    fn winch_stops_every_worker_whatever_its_lanes() {
        let mut w = World::steady(2, 4);
        w.s.target = 0;
        assert_eq!(stops(&w.turn()).len(), 1);
        assert_eq!(stops(&w.turn()).len(), 1);
        assert!(w.serving_ready().is_empty());
        assert_eq!(w.turn(), vec![]);
    }

    #[test]
    fn new_capacity_takes_the_least_served_lane_when_none_is_idle() {
        let mut w = World::steady(2, 2);
        w.s.target = 3;
        assert_eq!(spawns(&w.turn()), vec![(vec![0], vec![])]);
    }
}
