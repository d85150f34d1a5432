//! The HTML report of a demo run: accuracy and loss curves (SVG plots drawn
//! with plotters), the results table and the round log.

use fed::plan_run::PlanState;
use plotters::prelude::*;

use crate::results::{CurvePoint, DemoResults, FLAMBY};

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(90, 90, 90),
];

/// One line of a plot.
struct Series {
    label: String,
    points: Vec<(f64, f64)>,
    dashed: bool,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG line chart; returns the SVG text (or an error note if drawing failed).
fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let mut svg = String::new();
    let drawn = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (720, 360)).into_drawing_area();
        root.fill(&WHITE)?;
        let all = series.iter().flat_map(|s| s.points.iter());
        let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
        for &(x, y) in all {
            x_max = x_max.max(x);
            if y.is_finite() {
                y_min = y_min.min(y);
                y_max = y_max.max(y);
            }
        }
        if !y_min.is_finite() {
            (y_min, y_max) = (0.0, 1.0);
        }
        let pad = ((y_max - y_min) * 0.08).max(0.01);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..x_max, (y_min - pad)..(y_max + pad))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .x_label_formatter(&|x| format!("{x}"))
            .y_desc(y_label)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let style = ShapeStyle::from(color).stroke_width(2);
            let drawn = if s.dashed {
                chart.draw_series(DashedLineSeries::new(s.points.iter().copied(), 6, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(s.points.iter().copied(), style))?
            };
            drawn
                .label(s.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()?;
        root.present()?;
        Ok(())
    })();
    match drawn {
        Ok(()) => svg,
        Err(e) => format!("<p>plot unavailable: {}</p>", escape(&e.to_string())),
    }
}

fn curve_series(
    curve: &[CurvePoint],
    pick: impl Fn(&CurvePoint) -> Vec<(String, f64)>,
) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for p in curve {
        for (label, y) in pick(p) {
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push((f64::from(p.round), y)),
                None => series.push(Series {
                    label,
                    points: vec![(f64::from(p.round), y)],
                    dashed: false,
                }),
            }
        }
    }
    series
}

fn flat(label: &str, value: f64, rounds: u32) -> Series {
    Series {
        label: label.to_string(),
        points: vec![(0.0, value), (f64::from(rounds), value)],
        dashed: true,
    }
}

/// Accuracy against epsilon, when the run measured it.
fn privacy_section(results: &DemoResults) -> String {
    let Some(tradeoff) = &results.privacy_tradeoff else {
        return String::new();
    };
    let baseline = tradeoff.baseline;
    let series_of = |mechanism: &str| -> Vec<(f64, f64)> {
        tradeoff
            .points
            .iter()
            .filter(|p| p.mechanism == mechanism)
            .map(|p| (p.max_epsilon, p.pooled_accuracy))
            .collect()
    };
    // The plot shows epsilon up to 20, where the trade-off is decided; the
    // table has every run.
    const X_MAX: f64 = 20.0;
    let in_view = |points: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
        points.into_iter().filter(|p| p.0 <= X_MAX).collect()
    };
    let chart = line_chart(
        "Pooled test accuracy against record-level epsilon (largest over hospitals, up to 20)",
        "epsilon",
        "accuracy",
        &[
            Series {
                label: "DP-SGD".into(),
                points: in_view(series_of("DP-SGD")),
                dashed: false,
            },
            Series {
                label: "client DP-FedAvg".into(),
                points: in_view(series_of("client DP-FedAvg")),
                dashed: false,
            },
            Series {
                label: "no DP".into(),
                points: vec![(0.0, baseline), (X_MAX, baseline)],
                dashed: true,
            },
        ],
    );
    let mut table = String::from(
        "<table><tr><th>mechanism</th><th>noise multiplier</th><th>largest record-level epsilon</th>\
         <th>client-level epsilon</th><th>pooled accuracy</th><th>record-level epsilon per hospital</th></tr>",
    );
    table += &format!(
        "<tr><td>none</td><td></td><td>&infin;</td><td>&infin;</td><td>{baseline:.3}</td><td></td></tr>"
    );
    for p in &tradeoff.points {
        let per: Vec<String> = p
            .epsilon
            .iter()
            .map(|(k, e)| format!("{} {e:.2}", escape(k)))
            .collect();
        table += &format!(
            "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{:.3}</td><td>{}</td></tr>",
            escape(&p.mechanism),
            p.noise_multiplier,
            p.max_epsilon,
            p.client_epsilon
                .map_or(String::new(), |e| format!("{e:.2}")),
            p.pooled_accuracy,
            per.join(", ")
        );
    }
    table += "</table>";
    format!(
        "<h2>Privacy and utility</h2><p>DP-SGD: record-level, on every hospital; each hospital's \
         epsilon comes from its own RDP accountant (the smallest hospitals sample the largest fraction \
         of their records per step and spend the most). Client DP-FedAvg: each hospital's whole update \
         clipped (adaptive clip norm) and noised under secure aggregation; its client-level epsilon \
         protects a hospital's participation, its record-level epsilon (noise multiplier halved) is what \
         the hospitals charge. With four hospitals the noise on their sum is large against the \
         signal: client-level DP needs many more parties.</p>{table}<div class=\"plots\">{chart}</div>"
    )
}

/// The whole report as one self-contained HTML page.
pub fn html(results: &DemoResults, state: &PlanState) -> String {
    let rounds = results.rounds;
    let mut pooled = curve_series(&results.curve, |p| {
        vec![("federated (pooled test)".into(), p.pooled_accuracy)]
    });
    if let Some(m) = results
        .methods
        .iter()
        .find(|m| m.method == "pooled training")
    {
        pooled.push(flat("pooled training (this run)", m.pooled, rounds));
    }
    let best_flamby = FLAMBY.iter().map(|(_, a)| *a).fold(0.0, f64::max);
    pooled.push(flat("FLamby best federated (0.807)", best_flamby, rounds));
    let accuracy_plot = line_chart(
        "Pooled test accuracy of the federated model",
        "round",
        "accuracy",
        &pooled,
    );
    let per_site = line_chart(
        "Test accuracy per hospital",
        "round",
        "accuracy",
        &curve_series(&results.curve, |p| p.accuracy.clone().into_iter().collect()),
    );
    let mut losses = curve_series(&results.curve, |p| {
        p.loss
            .iter()
            .map(|(k, v)| (format!("{k} test"), *v))
            .collect()
    });
    losses.extend(curve_series(&results.curve, |p| {
        vec![("pooled test".into(), p.pooled_loss)]
    }));
    let loss_plot = line_chart("Test loss (binary cross-entropy)", "round", "loss", &losses);
    let privacy = privacy_section(results);

    let hospitals: Vec<String> = results
        .methods
        .first()
        .map(|m| m.per_hospital.keys().cloned().collect())
        .unwrap_or_default();
    let mut table = String::from("<table><tr><th>method</th>");
    for h in &hospitals {
        table += &format!("<th>{}</th>", escape(h));
    }
    table += "<th>pooled</th></tr>";
    for m in &results.methods {
        table += &format!("<tr><td>{}</td>", escape(&m.method));
        for h in &hospitals {
            table += &format!(
                "<td>{:.3}</td>",
                m.per_hospital.get(h).copied().unwrap_or(f64::NAN)
            );
        }
        table += &format!("<td><b>{:.3}</b></td></tr>", m.pooled);
    }
    table += "</table>";
    let mut flamby =
        String::from("<table><tr><th>FLamby method</th><th>pooled test accuracy</th></tr>");
    for (name, acc) in FLAMBY {
        flamby += &format!("<tr><td>{name}</td><td>{acc:.3}</td></tr>");
    }
    flamby += "</table>";
    let mut log = String::from(
        "<table><tr><th>round</th><th>contributors</th><th>missing</th><th>seconds</th><th>output model</th></tr>",
    );
    for r in &state.history {
        log += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td><code>{}</code></td></tr>",
            r.round,
            escape(
                &r.contributions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            escape(&r.missing.join(", ")),
            (r.closed_unix_ms - r.opened_unix_ms) as f64 / 1000.0,
            &r.output_sha256[..16]
        );
    }
    log += "</table>";
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cohort demo report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
code {{ font-size: 0.85em; }}
pre {{ white-space: pre-wrap; word-break: break-all; font-size: 0.8em; background: #f6f6f6; padding: 0.5em; }}
.plots svg {{ display: block; margin: 1em 0; }}
</style></head><body>
<h1>cohort demo: Fed-Heart-Disease</h1>
<p>{hospitals_n} hospitals, {rounds} rounds of <b>{strategy}</b>, seed {seed}. Plan <code>{plan_id}</code>.
Final model <code>{model}</code>. Federated training took {wall:.2} s.
Updates were combined {secure}.</p>
<h2>Test accuracy</h2>
{table}
<p>Federated: the final global model evaluated by each hospital on its own test split; pooled = all test
records together. Pooled training and local-only training were computed in the same run with the same
optimiser and number of passes over the data.</p>
<div class="plots">{accuracy_plot}{per_site}{loss_plot}</div>
{privacy}
<h2>Published figures</h2>
{flamby}
<h2>Rounds</h2>
{log}
<h2>Ledger</h2>
<p>Every operation of this run (plan, approvals, datasets, rounds, each hospital's signed
contribution, the released model) is in the federation's transparency log, verified offline at the
end of the run. Its final checkpoint, cosigned by the hospitals' witnesses:</p>
<pre>{checkpoint}</pre>
<p>Data: UCI Heart Disease (CC BY 4.0; Janosi, Steinbrunn, Pfisterer, Detrano, 1988), FLamby split.</p>
</body></html>
"#,
        hospitals_n = hospitals.len(),
        strategy = escape(&results.strategy),
        seed = results.seed,
        plan_id = results.plan_id,
        model = results.final_model_sha256,
        wall = results.federated_wall_seconds,
        secure = if results.secure_aggregation {
            "by secure aggregation (SecAgg+): the coordinator saw only masked updates and their sum"
        } else {
            "in the clear (no secure aggregation)"
        },
        checkpoint = escape(
            results
                .ledger_checkpoint
                .as_deref()
                .unwrap_or("(not published)")
        ),
    )
}
