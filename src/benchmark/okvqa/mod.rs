//! OpenFlamingo's OK-VQA answer post-processing (`open_flamingo/eval/ok_vqa_utils.py`), reimplemented: the
//! generation is cut as for every VQA set (first `Question`/`Answer`/`Short`, then first `", "`), then
//! stemmed word by word as the OK-VQA v1.1 answers were: nltk's word tokenizer and part-of-speech tagger,
//! then per token a fixed table of manual mappings, else nltk's WordNet lemmatizer (as a verb) for words
//! ending in `ing`, else `inflection.singularize` for plural nouns (tags NNS, NNPS); tokens joined by spaces.
//!
//! Data: WordNet 3.0 verb tables are built in (data/wordnet/, from Debian's wordnet-base); the tagger's
//! weights and Punkt's sentence-splitting parameters are nltk's English models, read from an nltk_data
//! folder ([`tagger`], [`punkt`]): no package ships them, and OpenFlamingo's evaluation needs them too.

pub mod inflect;
pub mod punkt;
pub mod tagger;
pub mod tokenize;
pub mod wordnet;

use anyhow::Result;
use std::sync::OnceLock;
use tagger::PerceptronTagger;

/// OK-VQA's manual stemming table (OpenFlamingo's `_MANUAL_MATCHES`: word -> its OK-VQA stem). Data.
const MANUAL: &[(&str, &str)] = &[
    ("police", "police"), ("las", "las"), ("vegas", "vegas"), ("yes", "yes"), ("jeans", "jean"), ("hell's", "hell"),
    ("domino's", "domino"), ("morning", "morn"), ("clothes", "cloth"), ("are", "are"), ("riding", "ride"),
    ("leaves", "leaf"), ("dangerous", "danger"), ("clothing", "cloth"), ("texting", "text"), ("kiting", "kite"),
    ("firefighters", "firefight"), ("ties", "tie"), ("married", "married"), ("teething", "teeth"), ("gloves", "glove"),
    ("tennis", "tennis"), ("dining", "dine"), ("directions", "direct"), ("waves", "wave"), ("christmas", "christmas"),
    ("drives", "drive"), ("pudding", "pud"), ("coding", "code"), ("plating", "plate"), ("quantas", "quanta"),
    ("hornes", "horn"), ("graves", "grave"), ("mating", "mate"), ("paned", "pane"), ("alertness", "alert"),
    ("sunbathing", "sunbath"), ("tenning", "ten"), ("wetness", "wet"), ("urinating", "urine"), ("sickness", "sick"),
    ("braves", "brave"), ("firefighting", "firefight"), ("lenses", "lens"), ("reflections", "reflect"),
    ("backpackers", "backpack"), ("eatting", "eat"), ("designers", "design"), ("curiousity", "curious"),
    ("playfulness", "play"), ("blindness", "blind"), ("hawke", "hawk"), ("tomatoe", "tomato"), ("rodeoing", "rodeo"),
    ("brightness", "bright"), ("circuses", "circus"), ("skateboarders", "skateboard"), ("staring", "stare"),
    ("electronics", "electron"), ("electicity", "elect"), ("mountainous", "mountain"), ("socializing", "social"),
    ("hamburgers", "hamburg"), ("caves", "cave"), ("transitions", "transit"), ("wading", "wade"), ("creame", "cream"),
    ("toileting", "toilet"), ("sautee", "saute"), ("buildings", "build"), ("belongings", "belong"),
    ("stockings", "stock"), ("walle", "wall"), ("cumulis", "cumuli"), ("travelers", "travel"), ("conducter", "conduct"),
    ("browsing", "brows"), ("pooping", "poop"), ("haircutting", "haircut"), ("toppings", "top"), ("hearding", "heard"),
    ("sunblocker", "sunblock"), ("bases", "base"), ("markings", "mark"), ("mopeds", "mope"),
    ("kindergartener", "kindergarten"), ("pies", "pie"), ("scrapbooking", "scrapbook"), ("couponing", "coupon"),
    ("meetings", "meet"), ("elevators", "elev"), ("lowes", "low"), ("men's", "men"), ("childrens", "children"),
    ("shelves", "shelve"), ("paintings", "paint"), ("raines", "rain"), ("paring", "pare"), ("expressions", "express"),
    ("routes", "rout"), ("pease", "peas"), ("vastness", "vast"), ("awning", "awn"), ("boy's", "boy"),
    ("drunkenness", "drunken"), ("teasing", "teas"), ("conferences", "confer"), ("ripeness", "ripe"),
    ("suspenders", "suspend"), ("earnings", "earn"), ("reporters", "report"), ("kid's", "kid"),
    ("containers", "contain"), ("corgie", "corgi"), ("porche", "porch"), ("microwaves", "microwave"),
    ("batter's", "batter"), ("sadness", "sad"), ("apartments", "apart"), ("oxygenize", "oxygen"),
    ("striping", "stripe"), ("purring", "pure"), ("professionals", "profession"), ("piping", "pipe"),
    ("farmer's", "farmer"), ("potatoe", "potato"), ("emirates", "emir"), ("womens", "women"),
    ("veteran's", "veteran"), ("wilderness", "wilder"), ("propellers", "propel"), ("alpes", "alp"),
    ("charioteering", "chariot"), ("swining", "swine"), ("illness", "ill"), ("crepte", "crept"),
    ("adhesives", "adhesive"), ("regent's", "regent"), ("decorations", "decor"), ("rabbies", "rabbi"),
    ("overseas", "oversea"), ("travellers", "travel"), ("casings", "case"), ("smugness", "smug"), ("doves", "dove"),
    ("nationals", "nation"), ("mustange", "mustang"), ("ringe", "ring"), ("gondoliere", "gondolier"),
    ("vacationing", "vacate"), ("reminders", "remind"), ("baldness", "bald"), ("settings", "set"),
    ("glaced", "glace"), ("coniferous", "conifer"), ("revelations", "revel"), ("personals", "person"),
    ("daughter's", "daughter"), ("badness", "bad"), ("projections", "project"), ("polarizing", "polar"),
    ("vandalizers", "vandal"), ("minerals", "miner"), ("protesters", "protest"), ("controllers", "control"),
    ("weddings", "wed"), ("sometimes", "sometime"), ("earing", "ear"),
];

fn manual(word: &str) -> Option<&'static str> {
    MANUAL.iter().find(|(k, _)| *k == word).map(|(_, v)| *v)
}

/// nltk's models the stemmer needs.
pub struct NltkModels {
    pub tagger: PerceptronTagger,
    pub punkt: punkt::Punkt,
}

impl NltkModels {
    /// Both models from one nltk_data folder each (the first that has it, in nltk's search order).
    pub fn find() -> Result<NltkModels> {
        let dirs = tagger::nltk_data_dirs();
        let tagger = dirs.iter().map(|d| d.join(tagger::MODEL_DIR)).find(|m| m.join("averaged_perceptron_tagger_eng.weights.json").exists());
        let punkt = dirs.iter().map(|d| d.join(punkt::MODEL_DIR)).find(|m| m.join("abbrev_types.txt").exists());
        match (tagger, punkt) {
            (Some(t), Some(p)) => Ok(NltkModels { tagger: PerceptronTagger::load(&t)?, punkt: punkt::Punkt::load(&p)? }),
            (t, p) => {
                let mut missing = Vec::new();
                if t.is_none() {
                    missing.push(format!("{}/averaged_perceptron_tagger_eng.{{weights,tagdict,classes}}.json (part-of-speech tagger)", tagger::MODEL_DIR));
                }
                if p.is_none() {
                    missing.push(format!("{}/{{abbrev_types.txt,collocations.tab,sent_starters.txt,ortho_context.tab}} (Punkt sentence splitter)", punkt::MODEL_DIR));
                }
                anyhow::bail!(
                    "OK-VQA post-processing (OpenFlamingo's stemmer) needs nltk's English models, not found in any nltk_data folder \
                     (searched {}): {}. Get them as OpenFlamingo's evaluation does: \
                     `python -m nltk.downloader averaged_perceptron_tagger_eng punkt_tab` (or set NLTK_DATA to the folder that holds them)",
                    dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
                    missing.join("; ")
                )
            }
        }
    }
}

/// nltk's `word_tokenize`: Punkt sentences, then the word rules on each.
pub fn word_tokenize(models: &NltkModels, text: &str) -> Vec<String> {
    models.punkt.sentences(text).iter().flat_map(|s| tokenize::word_tokenize(s)).collect()
}

/// OpenFlamingo's `OKVQAStemmer.stem`.
pub fn stem_with(models: &NltkModels, text: &str) -> String {
    let tokens = word_tokenize(models, text);
    let tags = models.tagger.tag(&tokens);
    let out: Vec<String> = tokens
        .iter()
        .zip(&tags)
        .map(|(w, p)| {
            if let Some(m) = manual(w) {
                m.to_string()
            } else if w.ends_with("ing") {
                wordnet::lemmatize_verb(w)
            } else if p.starts_with("NNS") || p.starts_with("NNPS") {
                inflect::singularize(w)
            } else {
                w.clone()
            }
        })
        .collect();
    out.join(" ")
}

static MODELS: OnceLock<NltkModels> = OnceLock::new();

/// nltk's models from the nltk_data folders, loaded once (a failure is not remembered: the next call looks
/// again); an error says where they were looked for and how to get them.
pub fn models() -> Result<&'static NltkModels> {
    if let Some(m) = MODELS.get() {
        return Ok(m);
    }
    let found = NltkModels::find()?;
    let _ = MODELS.set(found); // another thread may have set it first: either copy is the same data
    MODELS.get().ok_or_else(|| anyhow::anyhow!("nltk models could not be kept in memory"))
}

/// OpenFlamingo's `postprocess_ok_vqa_generation`.
pub fn postprocess(text: &str) -> Result<String> {
    Ok(stem_with(models()?, &super::postprocess::vqa_openflamingo(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from nltk 3.10.4 / inflection 0.5.1 / WordNet 3.0 (the full differential test against
    // OpenFlamingo's code is export/tests/test_okvqa_stemmer.py).
    #[test]
    fn tokenizer_lemmatizer_and_singularizer() {
        let t = |s: &str| tokenize::word_tokenize(s).join("|");
        assert_eq!(t("kid's toys"), "kid|'s|toys");
        assert_eq!(t("can't tell."), "ca|n't|tell|.");
        assert_eq!(t("\"hot\" dogs, fries"), "``|hot|''|dogs|,|fries");
        assert_eq!(t("'quoted' words"), "'|quoted|'|words");
        assert_eq!(t("cannot (red)"), "can|not|(|red|)");
        assert_eq!(wordnet::lemmatize_verb("running"), "run");
        assert_eq!(wordnet::lemmatize_verb("skiing"), "ski");
        assert_eq!(wordnet::lemmatize_verb("ceiling"), "ceiling");
        assert_eq!(wordnet::lemmatize_verb("Skiing"), "Skiing");
        assert_eq!(inflect::singularize("knives"), "knife");
        assert_eq!(inflect::singularize("Octopi"), "Octopus");
        assert_eq!(inflect::singularize("sheep"), "sheep");
        assert_eq!(inflect::singularize("women"), "woman");
        assert_eq!(inflect::singularize("boxes"), "box");
        assert_eq!(manual("christmas"), Some("christmas"));
    }
}
