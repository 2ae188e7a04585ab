//! Photo order: a seeded shuffle-bag or name order, plus browsing history.
//! No protocol types here.

/// splitmix64: small, seedable, good enough to shuffle photos.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        // Multiply-shift; the bias is negligible for photo counts.
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Turns `NEKOS_SEED` text into a seed: a number is used as is, anything else is hashed
/// (FNV-1a), so "cats" is a fine seed too.
pub fn seed_from_str(s: &str) -> u64 {
    let t = s.trim();
    if let Ok(n) = t.parse::<u64>() {
        return n;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in t.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderMode {
    Shuffle,
    Name,
}

/// Yields photo indices: every photo once per round; in shuffle mode never the same
/// photo twice in a row, also across reshuffles.
#[derive(Clone, Debug)]
pub struct Sequence {
    n: usize,
    mode: OrderMode,
    rng: Rng,
    bag: Vec<usize>,
    last: Option<usize>,
}

impl Sequence {
    pub fn new(n: usize, mode: OrderMode, seed: u64) -> Sequence {
        Sequence {
            n,
            mode,
            rng: Rng::new(seed),
            bag: Vec::new(),
            last: None,
        }
    }

    fn refill(&mut self) {
        // The bag is consumed from the end (pop), so "first out" is the last element.
        let mut v: Vec<usize> = (0..self.n).rev().collect();
        if self.mode == OrderMode::Shuffle {
            for i in (1..v.len()).rev() {
                let j = self.rng.below(i + 1);
                v.swap(i, j);
            }
            if let (Some(last), Some(first)) = (self.last, v.last().copied())
                && first == last
                && v.len() > 1
            {
                let j = self.rng.below(v.len() - 1);
                let end = v.len() - 1;
                v.swap(j, end);
            }
        }
        self.bag = v;
    }

    /// The next photo index; `None` if there are no photos.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<usize> {
        if self.n == 0 {
            return None;
        }
        if self.bag.is_empty() {
            self.refill();
        }
        let i = self.bag.pop()?;
        self.last = Some(i);
        Some(i)
    }

    /// Forgets a photo that turned out to be unusable.
    pub fn remove(&mut self, idx: usize) {
        self.bag.retain(|&i| i != idx);
    }
}

/// What has been shown, so Left/Home can go back.
#[derive(Clone, Debug)]
pub struct Browser {
    seq: Sequence,
    history: Vec<usize>,
    /// Position of the photo on screen in `history`; `None` before the first.
    pos: Option<usize>,
    bad: Vec<bool>,
}

impl Browser {
    pub fn new(n: usize, mode: OrderMode, seed: u64) -> Browser {
        Browser {
            seq: Sequence::new(n, mode, seed),
            history: Vec::new(),
            pos: None,
            bad: vec![false; n],
        }
    }

    pub fn current(&self) -> Option<usize> {
        self.history.get(self.pos?).copied()
    }

    pub fn all_bad(&self) -> bool {
        !self.bad.iter().any(|b| !b)
    }

    /// The photo a step forward would show (drawn from the sequence when needed).
    pub fn peek_next(&mut self) -> Option<usize> {
        let target = self.pos.map_or(0, |p| p + 1);
        while self.history.len() <= target {
            if self.all_bad() {
                return None;
            }
            let i = self.seq.next()?;
            if !self.bad[i] {
                self.history.push(i);
            }
        }
        self.history.get(target).copied()
    }

    /// Steps forward; returns the photo to show.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<usize> {
        let i = self.peek_next()?;
        self.pos = Some(self.pos.map_or(0, |p| p + 1));
        Some(i)
    }

    /// Steps back (stays on the first photo).
    pub fn prev(&mut self) -> Option<usize> {
        self.pos = self.pos.map(|p| p.saturating_sub(1));
        self.current()
    }

    /// Back to the first photo shown.
    pub fn first(&mut self) -> Option<usize> {
        self.pos = self.pos.map(|_| 0);
        self.current()
    }

    /// Marks a photo unusable and drops it from the history. If it was current, the
    /// photo before it becomes current, so `next` moves on to what followed.
    pub fn mark_bad(&mut self, idx: usize) {
        if let Some(b) = self.bad.get_mut(idx) {
            *b = true;
        }
        self.seq.remove(idx);
        let mut kept_before = 0usize;
        let mut current_bad = false;
        if let Some(p) = self.pos {
            for (k, &h) in self.history.iter().enumerate() {
                if k < p && h != idx {
                    kept_before += 1;
                }
                if k == p && h == idx {
                    current_bad = true;
                }
            }
        }
        self.history.retain(|&i| i != idx);
        self.pos = match self.pos {
            None => None,
            Some(_) if current_bad => kept_before.checked_sub(1),
            Some(_) => Some(kept_before),
        };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn name_order_cycles() {
        let mut s = Sequence::new(3, OrderMode::Name, 1);
        let v: Vec<_> = (0..7).map(|_| s.next().unwrap()).collect();
        assert_eq!(v, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(Sequence::new(0, OrderMode::Name, 1).next(), None);
    }

    #[test]
    fn shuffle_bag_properties() {
        for seed in 0..200u64 {
            for n in [1usize, 2, 3, 5, 8] {
                let mut s = Sequence::new(n, OrderMode::Shuffle, seed);
                let mut prev = None;
                for _round in 0..6 {
                    let mut round: Vec<usize> = (0..n).map(|_| s.next().unwrap()).collect();
                    for w in round.windows(2) {
                        assert_ne!(w[0], w[1]);
                    }
                    if n > 1 {
                        assert_ne!(
                            Some(round[0]),
                            prev,
                            "seed {seed} n {n}: repeat across reshuffle"
                        );
                    }
                    prev = round.last().copied();
                    round.sort_unstable();
                    assert_eq!(
                        round,
                        (0..n).collect::<Vec<_>>(),
                        "every photo once per round"
                    );
                }
            }
        }
    }

    #[test]
    fn shuffle_is_seeded() {
        let a: Vec<_> = {
            let mut s = Sequence::new(10, OrderMode::Shuffle, 42);
            (0..30).map(|_| s.next().unwrap()).collect()
        };
        let b: Vec<_> = {
            let mut s = Sequence::new(10, OrderMode::Shuffle, 42);
            (0..30).map(|_| s.next().unwrap()).collect()
        };
        let c: Vec<_> = {
            let mut s = Sequence::new(10, OrderMode::Shuffle, 43);
            (0..30).map(|_| s.next().unwrap()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a[..10], (0..10).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn seeds_from_text() {
        assert_eq!(seed_from_str(" 17 "), 17);
        assert_ne!(seed_from_str("cats"), seed_from_str("dogs"));
    }

    #[test]
    fn browser_back_and_forth() {
        let mut b = Browser::new(3, OrderMode::Name, 0);
        assert_eq!(b.next(), Some(0));
        assert_eq!(b.peek_next(), Some(1));
        assert_eq!(b.next(), Some(1));
        assert_eq!(b.next(), Some(2));
        assert_eq!(b.prev(), Some(1));
        assert_eq!(b.prev(), Some(0));
        assert_eq!(b.prev(), Some(0));
        assert_eq!(b.next(), Some(1));
        assert_eq!(b.next(), Some(2));
        assert_eq!(b.next(), Some(0));
        assert_eq!(b.first(), Some(0));
        assert_eq!(b.next(), Some(1));
    }

    #[test]
    fn browser_skips_bad() {
        let mut b = Browser::new(3, OrderMode::Name, 0);
        assert_eq!(b.next(), Some(0));
        assert_eq!(b.peek_next(), Some(1));
        b.mark_bad(1);
        assert_eq!(b.current(), Some(0));
        assert_eq!(b.next(), Some(2));
        assert_eq!(b.next(), Some(0));
        assert_eq!(b.next(), Some(2));
        b.mark_bad(0);
        b.mark_bad(2);
        assert!(b.all_bad());
        assert_eq!(b.peek_next(), None);
    }

    #[test]
    fn browser_first_photo_bad() {
        let mut b = Browser::new(2, OrderMode::Name, 0);
        assert_eq!(b.next(), Some(0));
        b.mark_bad(0);
        assert_eq!(b.current(), None);
        assert_eq!(b.next(), Some(1));
        assert_eq!(b.current(), Some(1));
        assert_eq!(b.next(), Some(1));
        assert_eq!(b.prev(), Some(1));
    }
}
