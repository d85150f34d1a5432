//! Sanity check against FLamby's published pooled logistic regression on Fed-Heart-Disease.

use learn::heart::{CENTRES, load_centre};
use learn::{Dataset, FeatureStats, ModelSpec, Optimizer, TrainConfig, evaluate, train};

const SPLIT_CSV: &str = include_str!("../../../data/heart-disease/flamby-split.csv");
const FILES: [&str; 4] = [
    include_str!("../../../data/heart-disease/processed.cleveland.data"),
    include_str!("../../../data/heart-disease/processed.hungarian.data"),
    include_str!("../../../data/heart-disease/processed.switzerland.data"),
    include_str!("../../../data/heart-disease/processed.va.data"),
];

#[test]
fn pooled_logistic_regression_reaches_flamby_accuracy() {
    let splits: Vec<_> = (0..CENTRES.len())
        .map(|c| load_centre(c, FILES[c], SPLIT_CSV).unwrap())
        .collect();
    let mut stats = FeatureStats::zeros(13);
    for s in &splits {
        stats.merge(&FeatureStats::of(&s.train)).unwrap();
    }
    let scale = stats.standardizer().unwrap();
    let trains: Vec<Dataset> = splits
        .iter()
        .map(|s| scale.apply(&s.train).unwrap())
        .collect();
    let tests: Vec<Dataset> = splits
        .iter()
        .map(|s| scale.apply(&s.test).unwrap())
        .collect();
    let pooled_train = Dataset::concat(&trains.iter().collect::<Vec<_>>()).unwrap();
    let pooled_test = Dataset::concat(&tests.iter().collect::<Vec<_>>()).unwrap();

    let spec = ModelSpec::LogisticRegression { inputs: 13 };
    let cfg = TrainConfig {
        epochs: 300,
        batch_size: 0,
        learning_rate: 0.01,
        optimizer: Optimizer::Adam,
        ..TrainConfig::default()
    };
    let (weights, report) = train(&spec, &spec.init(0), &pooled_train, &cfg, 42).unwrap();
    let metrics = evaluate(&spec, &weights, &pooled_test).unwrap();
    let per_centre: Vec<f64> = tests
        .iter()
        .map(|t| evaluate(&spec, &weights, t).unwrap().accuracy)
        .collect();
    println!(
        "pooled test accuracy {:.3}, loss {:.3}, train loss {:.3}; per centre {per_centre:.3?}",
        metrics.accuracy, metrics.loss, report.loss
    );
    assert_eq!(metrics.samples, 254);
    // FLamby reports 0.791 for pooled training; a linear model tops out near 0.81.
    assert!(metrics.accuracy > 0.74, "{}", metrics.accuracy);
}
