//! Prompt templates (`prompts/*.yaml`): the text of one demonstration, of the query, and the joiner.
//!
//! A template file:
//! ```yaml
//! name: openflamingo_vqa
//! description: OpenFlamingo eval prompt for VQA
//! demo: "<image>Question:{question} Short answer:{answer}<|endofchunk|>"
//! query: "<image>Question:{question} Short answer:"
//! separator: "\n"          # appended after EVERY demonstration (OF: "\n" for VQA/captioning, "" for classification)
//! media_marker: "<image>"  # default; each occurrence in the final prompt consumes one media item
//! prefix: "Instruction: provide an answer to the question.\n"   # optional: literal text written once, first
//! ```
//! `prefix` (default empty) is an instruction written once before the demonstrations (IDEFICS' evaluation
//! prompts have one); it may hold neither placeholders nor the media marker. A BOS token is never written by
//! a template: the model's manifest decides it (`tokenizer.add_bos`).
//! Placeholders are `{name}`; `{{` and `}}` are literal braces. Fields a sample offers (see
//! [`super::datasets::Sample::field`]): `question`, `text` (meme text), and the demonstration target under
//! any of the names `answer`, `caption`, `label`. Unknown placeholders are rejected when the benchmark is
//! loaded, naming the template file.

use super::spec::parse_yaml;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    name: String,
    #[serde(default)]
    description: String,
    demo: String,
    query: String,
    #[serde(default)]
    separator: String,
    #[serde(default = "default_marker")]
    media_marker: String,
    #[serde(default)]
    prefix: String,
}

fn default_marker() -> String {
    "<image>".to_string()
}

/// Names a template may use.
pub const KNOWN_FIELDS: &[&str] = &["question", "text", "answer", "caption", "label"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Field(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct PromptTemplate {
    pub name: String,
    pub description: String,
    pub path: PathBuf,
    pub demo: Vec<Segment>,
    pub query: Vec<Segment>,
    pub separator: String,
    pub media_marker: String,
    /// Literal text written once before the demonstrations (empty: none).
    pub prefix: String,
}

impl PromptTemplate {
    pub fn from_file(path: &Path) -> Result<PromptTemplate> {
        let text = std::fs::read_to_string(path).with_context(|| format!("could not read prompt template {}", path.display()))?;
        let f: TemplateFile = parse_yaml(&text, path)?;
        let demo = parse_segments(&f.demo).map_err(|e| anyhow!("{}: demo: {e}", path.display()))?;
        let query = parse_segments(&f.query).map_err(|e| anyhow!("{}: query: {e}", path.display()))?;
        if f.media_marker.is_empty() {
            bail!("{}: media_marker: must not be empty", path.display());
        }
        let prefix = parse_segments(&f.prefix).map_err(|e| anyhow!("{}: prefix: {e}", path.display()))?;
        if prefix.iter().any(|s| matches!(s, Segment::Field(_))) {
            bail!("{}: prefix: placeholders are not allowed (the prefix is written once, for no sample)", path.display());
        }
        let prefix: String = prefix.into_iter().map(|s| if let Segment::Literal(l) = s { l } else { String::new() }).collect();
        if prefix.contains(&f.media_marker) {
            bail!("{}: prefix: must not contain the media marker {:?} (no media belongs to it)", path.display(), f.media_marker);
        }
        Ok(PromptTemplate {
            name: f.name,
            description: f.description,
            path: path.to_path_buf(),
            demo,
            query,
            separator: f.separator,
            media_marker: f.media_marker,
            prefix,
        })
    }

    /// Placeholder names used by the demo and query parts.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.demo.iter().chain(self.query.iter()).filter_map(|s| match s {
            Segment::Field(f) => Some(f.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Check that every placeholder is one a sample of this layout provides.
    pub fn check_fields(&self, available: &[&str]) -> Result<()> {
        for f in self.fields() {
            if !available.contains(&f) {
                bail!(
                    "{}: placeholder `{{{f}}}` is not provided by this benchmark's dataset layout (available: {})",
                    self.path.display(),
                    available.join(", ")
                );
            }
        }
        Ok(())
    }
}

/// Split `{field}` placeholders from literal text.
pub fn parse_segments(s: &str) -> Result<Vec<Segment>> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => bail!("unterminated placeholder `{{{name}` in {s:?}"),
                    }
                }
                if !KNOWN_FIELDS.contains(&name.as_str()) {
                    bail!("unknown placeholder `{{{name}}}` (known: {})", KNOWN_FIELDS.join(", "));
                }
                if !lit.is_empty() {
                    out.push(Segment::Literal(std::mem::take(&mut lit)));
                }
                out.push(Segment::Field(name));
            }
            '}' => bail!("single `}}` in {s:?} (write `}}}}` for a literal brace)"),
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Segment::Literal(lit));
    }
    Ok(out)
}

/// Append the rendering of `segments` to `out`, looking fields up with `get`.
pub fn render_into<'a>(out: &mut String, segments: &[Segment], get: impl Fn(&str) -> Option<&'a str>) -> Result<()> {
    for s in segments {
        match s {
            Segment::Literal(l) => out.push_str(l),
            Segment::Field(f) => out.push_str(get(f).ok_or_else(|| anyhow!("the sample has no `{f}` field"))?),
        }
    }
    Ok(())
}

/// The bundled prompt templates folder: `prompts/` of the checkout the executable lives in, else of the
/// source tree it was built from.
pub fn bundled_dir() -> PathBuf {
    if let Some(root) = crate::model::runtime::project_root() {
        let d = root.join("prompts");
        if d.is_dir() {
            return d;
        }
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts")
}

/// Names of the templates in `dir` (file stems of `*.yaml`), sorted.
pub fn known_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    names
}

/// True when a `template:` value is a bare name (`openflamingo_vqa`), not a path.
pub fn is_bare_name(value: &str) -> bool {
    !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Resolves a benchmark's `template:` value. A path (after `${VAR}` substitution, relative to the benchmark
/// file's folder `base`) that names an existing file wins; otherwise a bare name (letters, digits, `_`, `-`)
/// is looked up as `NAME.yaml` in the bundled `prompts/` folder ([`bundled_dir`]). Neither: an error
/// listing the known names.
pub fn resolve_template(value: &str, base: &Path) -> Result<PathBuf> {
    resolve_template_in(value, base, &bundled_dir())
}

/// [`resolve_template`] with an explicit folder of named templates.
pub fn resolve_template_in(value: &str, base: &Path, named: &Path) -> Result<PathBuf> {
    let as_path = super::spec::resolve_path(value, base, "template")?;
    if as_path.is_file() {
        return Ok(as_path);
    }
    if is_bare_name(value) {
        let p = named.join(format!("{value}.yaml"));
        if p.is_file() {
            return Ok(p);
        }
    }
    let names = known_names(named);
    bail!(
        "template: `{value}` is neither a template file ({} does not exist) nor the name of a bundled template in {} (known names: {}); give a path relative to the benchmark file or one of these names",
        as_path.display(),
        named.display(),
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    )
}
