use learn::{ModelSpec, TrainConfig, evaluate, synthetic, train};
use std::time::Instant;

#[test]
fn timing() {
    let data = synthetic::logistic(1, 64, 30);
    let spec = ModelSpec::LogisticRegression { inputs: 30 };
    let start = spec.init(0);
    for (name, batch, epochs) in [("full-batch", 0usize, 10usize), ("batch32", 32, 5)] {
        let cfg = TrainConfig { epochs, batch_size: batch, learning_rate: 0.1, ..TrainConfig::default() };
        for _ in 0..50 { train(&spec, &start, &data, &cfg, 0).unwrap(); }
        let t = Instant::now();
        let n = 2000;
        for i in 0..n { std::hint::black_box(train(&spec, &start, &data, &cfg, i).unwrap()); }
        println!("{name}: {:.1} us per train call", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    let t = Instant::now();
    for _ in 0..2000 { std::hint::black_box(evaluate(&spec, &start, &data).unwrap()); }
    println!("evaluate: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / 2000.0);
    if std::env::var("LR_ONLY").is_ok() { return; }
    let mlp = ModelSpec::Mlp { inputs: 30, hidden: vec![32, 16] };
    let cfg = TrainConfig { epochs: 10, batch_size: 0, ..TrainConfig::default() };
    let t = Instant::now();
    for i in 0..500 { std::hint::black_box(train(&mlp, &mlp.init(0), &data, &cfg, i).unwrap()); }
    println!("mlp 30-32-16-1 10 steps: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / 500.0);
}
