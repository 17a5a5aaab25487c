//! Feeds arbitrary bytes to the injection-file parser (`--inject`): both formats,
//! quoting, line ends, comments. A parsed file must answer every field of every row,
//! every column lookup and every row selection without panicking.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sipwright::scenario::inject::{Injection, Order};

struct Counter(u64);

impl rand::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        self.0
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u32() as u8;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut inj) = Injection::parse(data.to_vec(), "fuzz.csv") else {
        return;
    };
    let cols = inj.columns().len();
    assert!(inj.rows() > 0 && cols > 0);
    let mut total = 0;
    for row in 0..inj.rows() {
        for col in 0..cols {
            total += inj.field(row, col).len();
        }
    }
    assert!(total <= data.len());
    for (i, name) in inj.columns().to_vec().iter().enumerate() {
        assert_eq!(inj.column(name), Some(i));
        assert!(inj.column(&format!("field{i}")).is_some());
    }
    let mut rng = Counter(data.len() as u64);
    for order in [Order::Sequential, Order::Random, Order::PerWorker] {
        inj.set_order(order);
        for (k, worker, workers) in [(0, 0, 0), (1, 0, 1), (7, 2, 3), (u64::MAX, 5, 4)] {
            assert!(inj.row_for(k, worker, workers, &mut rng) < inj.rows());
        }
    }
});
