//! Secure round against plain round: `cargo run --release -p privacy --example secagg_bench --
//! [clients] [params] [repetitions]` (defaults 10, 100000, 7), complete graph and SecAgg+.

use privacy::secagg::{SecAggError, Topology, benchmark_round};

fn main() -> Result<(), SecAggError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg =
        |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let clients = u32::try_from(arg(0, 10)).unwrap_or(10);
    let (params, repetitions) = (arg(1, 100_000), arg(2, 7));
    let harary = Topology::Harary {
        num_shares: (clients as usize / 2) | 1,
        seed: [7; 32],
    };
    for (name, topology) in [("complete", Topology::Complete), ("secagg+", harary)] {
        let result = benchmark_round(clients, params, topology, repetitions, 1)?;
        println!(
            "{name:9} {clients} clients x {params} params: plain {:.2} ms, secure {:.2} ms, ratio {:.2}x, sums match: {}",
            result.plain.as_secs_f64() * 1e3,
            result.secure.as_secs_f64() * 1e3,
            result.ratio(),
            result.sums_match
        );
    }
    Ok(())
}
