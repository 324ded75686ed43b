//! The property tests draw random inventories and machine descriptions,
//! and must stay deterministic and dependency-free, with a seed to replay
//! a failure: this is their one small seeded generator (xorshift64), with
//! the few draws they need.

/// A xorshift64 generator.
pub struct Rng(u64);

impl Rng {
    /// The generator of a property test's `seed` (any number, 0 too): the
    /// seed spread over the bits, and odd, since xorshift stays at zero.
    pub fn from_seed(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    #[allow(
        clippy::should_implement_trait,
        reason = "an endless stream of u64, not an Iterator of Options"
    )]
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// One of `items`, which must not be empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Shuffle `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// A random UUID in NVIDIA's form, `<prefix>-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
    pub fn uuid(&mut self, prefix: &str) -> String {
        let hex = format!("{:016x}{:016x}", self.next(), self.next());
        format!(
            "{prefix}-{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )
    }
}
