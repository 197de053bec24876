//! `traduire eval`: translate a test set and score it with BLEU, chrF, chrF++ and TER exactly
//! as sacreBLEU does, or compare several settings (models, dtypes, beams) in one table with
//! paired bootstrap p-values.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;
use traduire::eval::bootstrap::PairedBootstrap;
use traduire::eval::evaluate::{
    compare, score_system, standard_metrics, Comparison, MetricOptions, MetricScore, ScoredSystem,
    TestSet, SACREBLEU_VERSION,
};
use traduire::eval::tokenize::BleuTokenizer;
use traduire::translator::{Event, Translator, TranslatorOptions};

use super::args::{DecodeArgs, ModelArgs, PrecisionArg};
use super::progress::sentence_bar;

/// Arguments of `traduire eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The French source, one segment per line.
    #[arg(long, value_name = "FILE", required_unless_present = "hyp")]
    pub src: Option<PathBuf>,
    /// A reference translation, line-aligned with the source; repeat for several references.
    #[arg(long = "ref", value_name = "FILE", required = true)]
    pub references: Vec<PathBuf>,
    /// Score this existing translation instead of translating (no model is loaded); repeat to
    /// compare several.
    #[arg(long, value_name = "FILE")]
    pub hyp: Vec<PathBuf>,
    /// Compare every combination of the listed --model, --dtype and --beams values (e.g.
    /// `--dtype f32,int8 --beams 1,4`) in one table, with paired bootstrap p-values against
    /// the first.
    #[arg(long, conflicts_with = "hyp")]
    pub compare: bool,
    /// BLEU tokenization, as sacreBLEU's --tokenize.
    #[arg(long, value_enum, default_value_t = TokenizeArg::Thirteen)]
    pub tokenize: TokenizeArg,
    /// Lowercase before scoring BLEU and chrF (sacreBLEU's --lowercase).
    #[arg(long, short = 'l')]
    pub lowercase: bool,
    /// Bootstrap resamples for the p-values (sacreBLEU's default: 1000).
    #[arg(long, default_value_t = 1000, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub bootstrap_samples: u32,
    /// One JSON object with every number and signature, instead of text.
    #[arg(long)]
    pub json: bool,
    /// Replace invalid UTF-8 bytes with U+FFFD instead of failing.
    #[arg(long)]
    pub lossy: bool,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub decode: DecodeArgs,
}

/// `--tokenize` values (sacreBLEU's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenizeArg {
    /// sacreBLEU's default (mteval-v13a).
    #[value(name = "13a")]
    Thirteen,
    /// mteval-v14 international tokenization (Unicode punctuation and symbols).
    Intl,
    /// Every character is a token.
    Char,
    /// No tokenization.
    None,
}

impl From<TokenizeArg> for BleuTokenizer {
    fn from(t: TokenizeArg) -> Self {
        match t {
            TokenizeArg::Thirteen => BleuTokenizer::Thirteen,
            TokenizeArg::Intl => BleuTokenizer::Intl,
            TokenizeArg::Char => BleuTokenizer::Char,
            TokenizeArg::None => BleuTokenizer::None,
        }
    }
}

/// One translation setting of a comparison.
#[derive(Debug, Clone, Serialize)]
struct Setting {
    /// The model name or folder.
    model: String,
    /// The dtype.
    dtype: String,
    /// Beam width (None: the model's default).
    beams: Option<u16>,
}

impl Setting {
    fn label(&self) -> String {
        match self.beams {
            Some(b) => format!("{} {} beam {b}", self.model, self.dtype),
            None => format!("{} {}", self.model, self.dtype),
        }
    }
}

/// Speed of one translation run.
#[derive(Debug, Clone, Serialize)]
struct Speed {
    sentences: usize,
    target_tokens: usize,
    seconds: f64,
    target_tokens_per_s: f64,
}

/// One evaluated system: a setting or a hypothesis file.
#[derive(Debug, Clone, Serialize)]
struct SystemReport {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    setting: Option<Setting>,
    metrics: Vec<MetricScore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed: Option<Speed>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compared_to_first: Vec<Comparison>,
}

/// Runs `traduire eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    // Everything that can be checked without a model first.
    let settings = settings(&args)?;
    let test = TestSet::read(args.src.as_deref(), &args.references, args.lossy)?;
    let mut hypotheses: Vec<(String, Vec<String>)> = Vec::new();
    for path in &args.hyp {
        let lines = traduire::eval::evaluate::read_lines(path, args.lossy)?;
        test.check_length(path, lines.len())?;
        hypotheses.push((path.display().to_string(), lines));
    }
    let metrics = standard_metrics(MetricOptions {
        tokenize: args.tokenize.into(),
        lowercase: args.lowercase,
    });
    let references = test.reference_streams();
    if let Some((path, source)) = &test.source {
        let empty = source.iter().filter(|l| l.trim().is_empty()).count();
        if empty > 0 && !args.quiet {
            eprintln!(
                "note: {} has {empty} empty lines: their translations are empty",
                path.display()
            );
        }
    }

    let mut systems: Vec<(SystemReport, ScoredSystem)> = Vec::new();
    for (name, lines) in hypotheses {
        let scored = score_system(&metrics, &lines, &references)?;
        systems.push((
            SystemReport {
                name,
                setting: None,
                metrics: scored.scores.clone(),
                speed: None,
                compared_to_first: Vec::new(),
            },
            scored,
        ));
    }
    if args.hyp.is_empty() {
        let source = &test
            .source
            .as_ref()
            .expect("clap requires --src without --hyp")
            .1;
        let interactive = std::io::stderr().is_terminal() && !args.quiet && !args.json;
        let mut loaded: Option<(String, String, Translator)> = None;
        for setting in &settings {
            let key = (setting.model.clone(), setting.dtype.clone());
            if loaded.as_ref().map(|(m, d, _)| (m.clone(), d.clone())) != Some(key.clone()) {
                drop(loaded.take()); // free the previous model first
                let (model_args, runtime) = setting_model(&args, setting)?;
                let dir = model_args.model_dir(interactive)?;
                let translator = Translator::load(&dir, &runtime)?;
                loaded = Some((key.0, key.1, translator));
            }
            let translator = &loaded.as_ref().expect("loaded above").2;
            let (lines, speed) = translate(translator, &args, setting, source, interactive)?;
            let scored = score_system(&metrics, &lines, &references)?;
            systems.push((
                SystemReport {
                    name: setting.label(),
                    setting: Some(setting.clone()),
                    metrics: scored.scores.clone(),
                    speed: Some(speed),
                    compared_to_first: Vec::new(),
                },
                scored,
            ));
        }
    }
    let bootstrap = PairedBootstrap {
        n_samples: args.bootstrap_samples as usize,
        seed: 12345,
    };
    if systems.len() > 1 {
        let baseline = systems[0].1.clone();
        for (report, scored) in systems.iter_mut().skip(1) {
            report.compared_to_first = compare(&metrics, &baseline, scored, &bootstrap)?;
        }
    }
    let reports: Vec<SystemReport> = systems.into_iter().map(|(r, _)| r).collect();
    if args.json {
        let out = serde_json::json!({
            "sacrebleu_version": SACREBLEU_VERSION,
            "segments": test.len(),
            "references": args.references,
            "bootstrap": {"samples": bootstrap.n_samples, "seed": bootstrap.seed},
            "systems": reports,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if reports.len() == 1 {
        print_one(&reports[0]);
    } else {
        print_table(&reports, bootstrap.n_samples);
    }
    Ok(())
}

/// The settings to translate with: every combination of the listed models, dtypes and
/// beams. More than one needs --compare.
fn settings(args: &EvalArgs) -> Result<Vec<Setting>> {
    let models: Vec<String> = if args.model.model_dir.is_empty() {
        args.model.model.clone()
    } else {
        args.model
            .model_dir
            .iter()
            .map(|d| d.display().to_string())
            .collect()
    };
    let dtypes: Vec<PrecisionArg> = args.model.runtime.dtype.clone();
    let beams: Vec<Option<u16>> = if args.decode.beams.is_empty() {
        vec![None]
    } else {
        args.decode.beams.iter().map(|&b| Some(b)).collect()
    };
    let mut out = Vec::new();
    for model in &models {
        for &dtype in &dtypes {
            for &b in &beams {
                out.push(Setting {
                    model: model.clone(),
                    dtype: dtype_name(dtype).to_string(),
                    beams: b,
                });
            }
        }
    }
    if out.len() > 1 && !args.compare {
        bail!(
            "{} settings given (--model, --dtype or --beams with several values): add --compare to compare them",
            out.len()
        );
    }
    if !args.hyp.is_empty() && (models.len() > 1 || dtypes.len() > 1 || beams.len() > 1) {
        bail!(
            "--hyp scores existing translations: --model, --dtype and --beams lists do not apply"
        );
    }
    // Every runtime option must be valid before the first model loads.
    for setting in &out {
        setting_model(args, setting)?;
    }
    Ok(out)
}

fn dtype_name(d: PrecisionArg) -> &'static str {
    match d {
        PrecisionArg::F32 => "f32",
        PrecisionArg::F16 => "f16",
        PrecisionArg::Bf16 => "bf16",
        PrecisionArg::Int8 => "int8",
    }
}

/// The model arguments and runtime options of one setting.
fn setting_model(
    args: &EvalArgs,
    setting: &Setting,
) -> Result<(ModelArgs, traduire::marian::ModelOptions)> {
    let mut model = args.model.clone();
    if model.model_dir.is_empty() {
        model.model = vec![setting.model.clone()];
    } else {
        model.model_dir = vec![PathBuf::from(&setting.model)];
    }
    let dtype = args
        .model
        .runtime
        .dtype
        .iter()
        .copied()
        .find(|&d| dtype_name(d) == setting.dtype)
        .unwrap_or(PrecisionArg::F32);
    model.runtime.dtype = vec![dtype];
    let runtime = model.runtime.options()?;
    Ok((model, runtime))
}

/// Translates the source lines with one setting: the hypotheses and the speed.
fn translate(
    translator: &Translator,
    args: &EvalArgs,
    setting: &Setting,
    source: &[String],
    interactive: bool,
) -> Result<(Vec<String>, Speed)> {
    let mut decode = args.decode.clone();
    decode.beams = setting.beams.into_iter().collect();
    let runtime = setting_model(args, setting)?.1;
    let options = TranslatorOptions {
        decode: decode.apply(translator.default_decode_options()),
        batch: decode.batch(runtime.device),
        max_sentence_tokens: decode.max_sentence_tokens as usize,
        alignments: false,
    };
    translator.validate(&options)?;
    let sentences: Vec<&str> = source
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let bar = sentence_bar(interactive);
    bar.set_length(sentences.len() as u64);
    bar.set_message(setting.label());
    let started = Instant::now();
    let translations = translator.translate(&sentences, &options, &mut |event| {
        if let Event::Progress { sentences } = event {
            bar.inc(sentences as u64);
        }
    })?;
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let target_tokens: usize = translations.iter().map(|t| t.target_tokens).sum();
    let mut next = translations.into_iter();
    let lines = source
        .iter()
        .map(|s| {
            if s.trim().is_empty() {
                String::new()
            } else {
                next.next().map(|t| t.text).unwrap_or_default()
            }
        })
        .collect();
    Ok((
        lines,
        Speed {
            sentences: sentences.len(),
            target_tokens,
            seconds,
            target_tokens_per_s: if seconds > 0.0 {
                target_tokens as f64 / seconds
            } else {
                0.0
            },
        },
    ))
}

fn print_one(report: &SystemReport) {
    for m in &report.metrics {
        println!("{}", m.formatted);
        println!("  {}", m.signature);
    }
    if let Some(speed) = &report.speed {
        println!(
            "speed: {} sentences, {} target tokens in {:.1} s: {:.0} target tokens/s ({})",
            speed.sentences,
            speed.target_tokens,
            speed.seconds,
            speed.target_tokens_per_s,
            report.name
        );
    }
}

fn print_table(reports: &[SystemReport], samples: usize) {
    println!(
        "| system | BLEU | Δ BLEU (p) | chrF2 | Δ chrF2 (p) | chrF2++ | TER | target tokens/s | seconds |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, r) in reports.iter().enumerate() {
        let score = |name: &str| {
            r.metrics
                .iter()
                .find(|m| m.name == name)
                .map_or(f64::NAN, |m| m.score)
        };
        let delta = |name: &str| {
            if i == 0 {
                return "baseline".to_string();
            }
            r.compared_to_first
                .iter()
                .find(|c| c.name == name)
                .map_or(String::new(), |c| {
                    let star = if c.p_value < 0.05 { "*" } else { "" };
                    format!("{:+.2} ({:.4}){star}", c.delta, c.p_value)
                })
        };
        let (speed, seconds) = r
            .speed
            .as_ref()
            .map_or(("".to_string(), "".to_string()), |s| {
                (
                    format!("{:.0}", s.target_tokens_per_s),
                    format!("{:.1}", s.seconds),
                )
            });
        println!(
            "| {} | {:.2} | {} | {:.2} | {} | {:.2} | {:.2} | {} | {} |",
            r.name,
            score("BLEU"),
            delta("BLEU"),
            score("chrF2"),
            delta("chrF2"),
            score("chrF2++"),
            score("TER"),
            speed,
            seconds
        );
    }
    println!();
    println!(
        "p: paired bootstrap resampling against the first row ({samples} resamples, seed 12345, as sacrebleu --paired-bs); * p < 0.05"
    );
    for m in &reports[0].metrics {
        println!("{}: {}", m.name, m.signature);
    }
}
