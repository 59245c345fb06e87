//! `flamingo-eval model inspect DIR` and `flamingo-eval generate`.

use crate::cli::common::{report_providers, RuntimeArgs};
use crate::model::{FlamingoModel, Media, SearchParams};
use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum ModelCommand {
    /// Show a model directory's manifest, components and the execution providers they run on.
    Inspect(InspectArgs),
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The exported model directory (holds model.yaml).
    pub dir: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

pub fn run_model(cmd: ModelCommand) -> Result<ExitCode> {
    match cmd {
        ModelCommand::Inspect(args) => inspect(args),
    }
}

fn inspect(args: InspectArgs) -> Result<ExitCode> {
    if let Some(note) = crate::model::runtime::check_device(&args.runtime.options())? {
        eprintln!("WARNING: {note}");
    }
    let mut model = FlamingoModel::load(&args.dir, &args.runtime.options())?;
    let mismatches = crate::model::checks::mismatches(&mut model, true);
    let m = &model.manifest;
    println!("model        {} ({})", m.name, args.dir.display());
    println!("contract     v{}  exporter {}  opset {}  dtype {}", m.contract_version, m.exporter_version, m.opset, m.dtype().as_str());
    println!("source       {}  open_flamingo {}  open_clip {}", m.source.checkpoint_sha256, m.source.open_flamingo_version, m.source.open_clip_version);
    println!(
        "vision       {}x{} px ({:?}, {:?} crop), {} patches of width {}, embedding {}",
        m.preprocess.image_size, m.preprocess.image_size, m.preprocess.interpolation, m.preprocess.crop,
        m.vision.num_patches, m.vision.width, m.vision.embed_dim
    );
    println!(
        "perceiver    {} latents, depth {}, {} heads x {}, frames <= {}{}",
        m.perceiver.num_latents, m.perceiver.depth, m.perceiver.heads, m.perceiver.dim_head, m.perceiver.max_frames,
        if m.perceiver.frame_embeddings { " (frame embeddings)" } else { "" }
    );
    println!(
        "language     {} with {} layers, {} heads x {}, hidden {}, vocab {}, max positions {}, cross-attn every {} layer(s)",
        m.lang.family, m.lang.n_layers, m.lang.n_heads, m.lang.head_dim, m.lang.hidden, m.lang.vocab_size,
        m.lang.max_positions, m.lang.cross_attn_every_n_layers
    );
    match &m.cross_attn_cache {
        Some(x) => println!(
            "cross-attn   keys/values cached per media ({}: layers {:?}, width {})",
            m.components.xattn_kv.as_ref().map(|c| c.file.as_str()).unwrap_or("?"),
            x.layers,
            x.width
        ),
        None => println!(
            "cross-attn   keys/values recomputed in every decoder call (contract v{}; re-export with the current \
             exporter for the cache)",
            m.contract_version
        ),
    }
    println!(
        "tokens       <image>={} <|endofchunk|>={} pad={} eos={}{}  (tokenizer vocabulary {})",
        m.special_tokens.image,
        m.special_tokens.endofchunk,
        m.special_tokens.pad,
        m.special_tokens.eos,
        m.special_tokens.end_of_utterance.map(|e| format!(" <end_of_utterance>={e}")).unwrap_or_default(),
        model.tokenizer.vocab_size()
    );
    println!("generation   stops at {:?}", model.tokenizer.stop_ids);
    println!(
        "tokenizer    add_bos {} (bos {}), clean_up_tokenization_spaces {}, padding {:?}",
        m.tokenizer.add_bos,
        m.special_tokens.bos.map(|b| b.to_string()).unwrap_or_else(|| "none".into()),
        m.tokenizer.clean_up_tokenization_spaces,
        m.tokenizer.padding_side
    );
    if let Some(lib) = crate::model::runtime::loaded_library() {
        println!("onnxruntime  {}", lib.display());
    }
    for r in model.providers() {
        println!("component    {:<15} {}{}", r.component, r.provider, if r.fell_back { "  (FALLBACK from requested device)" } else { "" });
    }
    report_providers(&model.providers());
    if !mismatches.is_empty() {
        println!("checks       {} MISMATCH(ES): `run` refuses this model", mismatches.len());
        for m in &mismatches {
            println!("MISMATCH     {m}");
        }
        return Ok(ExitCode::from(1));
    }
    println!("checks       manifest, tokenizer and graphs agree (one decoder step at position {} ran)", m.lang.max_positions - 1);
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// The exported model directory.
    #[arg(long)]
    pub model: PathBuf,
    /// Images, in the order of the prompt's <image> markers.
    #[arg(long = "image", value_name = "PATH")]
    pub images: Vec<PathBuf>,
    /// The prompt; each <image> marker takes the next --image.
    #[arg(long)]
    pub prompt: String,
    /// Beams (1 = greedy).
    #[arg(long, default_value_t = 3)]
    pub num_beams: usize,
    /// Most tokens generated.
    #[arg(long, default_value_t = 20)]
    pub max_new_tokens: usize,
    /// Tokens generated before a stop token (<|endofchunk|>) may end a beam.
    #[arg(long, default_value_t = 0)]
    pub min_new_tokens: usize,
    /// Beam score = sum of token log-probabilities / length^penalty (0: the plain sum, as OpenFlamingo).
    #[arg(long, default_value_t = 0.0)]
    pub length_penalty: f32,
    /// Print token ids and the score as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

pub fn run_generate(args: GenerateArgs) -> Result<ExitCode> {
    let mut model = FlamingoModel::load(&args.model, &args.runtime.options())?;
    let bad = crate::model::checks::mismatches(&mut model, false);
    if !bad.is_empty() {
        bail!("{}: the model does not match its manifest (see `flamingo-eval model inspect`): {}", args.model.display(), bad.iter().map(|m| m.to_string()).collect::<Vec<_>>().join("; "));
    }
    report_providers(&model.providers());
    let n_markers = args.prompt.matches("<image>").count();
    if n_markers != args.images.len() {
        bail!("the prompt has {n_markers} <image> markers but {} --image files were given", args.images.len());
    }
    for p in &args.images {
        crate::benchmark::paths::check_media_file(p, "--image")?;
    }
    let media: Vec<Media> = args.images.iter().cloned().map(Media::Image).collect();
    let encoded = model.encode_media(&media)?;
    let prompt = model.make_prompt(&args.prompt, encoded)?;
    let params = SearchParams {
        num_beams: args.num_beams,
        max_new_tokens: args.max_new_tokens,
        min_new_tokens: args.min_new_tokens,
        length_penalty: args.length_penalty,
        stop_tokens: model.tokenizer.stop_ids.clone(),
    };
    let out = model.generate(&[&prompt], &params)?.remove(0);
    if args.json {
        println!("{}", serde_json::json!({"text": out.text, "tokens": out.tokens, "score": out.score}));
    } else {
        println!("{}", out.text);
    }
    Ok(ExitCode::SUCCESS)
}
