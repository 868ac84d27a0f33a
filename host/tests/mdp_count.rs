//! An independent check of the MDP's mask: the number of valid complete architectures, counted by
//! dynamic programming straight from the seed's rules (written here, apart from `mdp.rs`), equals
//! the number of complete trajectories the mask allows — and both equal the known totals.

use std::collections::HashMap;

use nas_core::mdp::{Mdp, MdpConfig, State};

/// The seed's rules, restated: conv (10/20/32/64 filters, kernel 1/3/5, stride 1, no padding)
/// follows the start, conv or pool, with kernel < image side; pool (5,3)/(3,2)/(2,2) follows conv
/// only, with size < image side; fc (512/256/128/64) follows conv, pool, or a larger fc; at most 2
/// fc; at most 8 layers; at least `min_depth` layers.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Last {
    Start,
    Conv,
    Pool,
    Fc(u32),
}

struct Rules {
    min_depth: usize,
    memo: HashMap<(Last, u32, usize, usize), u64>,
}

impl Rules {
    /// Architectures that extend a prefix of `depth` layers ending in `last` on an image of `side`
    /// with `fcs` fc layers, counting each way to end (including ending after one more layer).
    fn completions(&mut self, last: Last, side: u32, depth: usize, fcs: usize) -> u64 {
        if depth == 8 {
            return 0;
        }
        if let Some(&n) = self.memo.get(&(last, side, depth, fcs)) {
            return n;
        }
        let mut next: Vec<(Last, u32, usize)> = Vec::new();
        if matches!(last, Last::Start | Last::Conv | Last::Pool) {
            for _filters in [10, 20, 32, 64] {
                for kernel in [1u32, 3, 5] {
                    if kernel < side {
                        next.push((Last::Conv, side - kernel + 1, fcs));
                    }
                }
            }
        }
        if last == Last::Conv {
            for (size, stride) in [(5u32, 3u32), (3, 2), (2, 2)] {
                if size < side {
                    next.push((Last::Pool, (side - size) / stride + 1, fcs));
                }
            }
        }
        if fcs < 2 && last != Last::Start {
            for units in [512u32, 256, 128, 64] {
                let grows = matches!(last, Last::Fc(previous) if units >= previous);
                if !grows {
                    next.push((Last::Fc(units), side, fcs + 1));
                }
            }
        }
        let mut total = 0;
        for (layer, side, fcs) in next {
            let ends_here = u64::from(depth + 1 >= self.min_depth);
            total += ends_here + self.completions(layer, side, depth + 1, fcs);
        }
        self.memo.insert((last, side, depth, fcs), total);
        total
    }
}

fn count_by_rules(side: u32, min_depth: usize) -> u64 {
    Rules {
        min_depth,
        memo: HashMap::new(),
    }
    .completions(Last::Start, side, 0, 0)
}

/// Complete trajectories through the MDP's mask: every valid action either ends the network (one
/// architecture) or leads to a state with its own count.
fn count_by_mask(mdp: &Mdp, state: State, memo: &mut HashMap<State, u64>) -> u64 {
    if let Some(&n) = memo.get(&state) {
        return n;
    }
    let mut total = 0;
    for (action, valid) in mdp.actions().iter().zip(mdp.mask(&state)) {
        if valid {
            total += if action.terminate {
                1
            } else {
                count_by_mask(mdp, mdp.next_state(&state, action), memo)
            };
        }
    }
    memo.insert(state, total);
    total
}

fn mask_count(side: u32, min_depth: usize) -> u64 {
    let mdp = Mdp::new(
        MdpConfig {
            min_depth,
            ..MdpConfig::default()
        },
        side,
    );
    count_by_mask(&mdp, mdp.start(), &mut HashMap::new())
}

#[test]
fn the_mask_allows_exactly_the_architectures_the_rules_allow() {
    assert_eq!(count_by_rules(28, 1), 1_482_591_520);
    assert_eq!(count_by_rules(32, 1), 1_670_468_208);
    for side in [28, 32] {
        for min_depth in [1, 2] {
            assert_eq!(
                mask_count(side, min_depth),
                count_by_rules(side, min_depth),
                "side {side}, min_depth {min_depth}"
            );
        }
        // A minimum of two layers removes exactly the 12 one-conv networks.
        assert_eq!(count_by_rules(side, 1) - count_by_rules(side, 2), 12);
    }
}
