//! `inflection.singularize` (inflection 0.5.1, the Rails inflector's English rules): uncountable words are
//! kept, else the first matching rule of the singular table (irregular words first) rewrites the word.

use once_cell::sync::Lazy;
use regex::Regex;

const UNCOUNTABLES: [&str; 9] = ["equipment", "fish", "information", "jeans", "money", "rice", "series", "sheep", "species"];

/// (pattern, replacement), in the order they are tried.
const RULES: [(&str, &str); 42] = [
    // irregular words (added last in inflection, so tried first), most recently added first
    (r"(?i)(z)ombies$", "${1}ombie"),
    (r"k[iI][nN][eE]$", "cow"),
    (r"K[iI][nN][eE]$", "Cow"),
    (r"(?i)(m)oves$", "${1}ove"),
    (r"(?i)(s)exes$", "${1}ex"),
    (r"(?i)(c)hildren$", "${1}hild"),
    (r"(?i)(h)umans$", "${1}uman"),
    (r"(?i)(m)en$", "${1}an"),
    (r"(?i)(p)eople$", "${1}erson"),
    (r"(?i)(database)s$", "${1}"),
    (r"(?i)(quiz)zes$", "${1}"),
    (r"(?i)(matr)ices$", "${1}ix"),
    (r"(?i)(vert|ind)ices$", "${1}ex"),
    (r"(?i)(passer)sby$", "${1}by"),
    (r"(?i)^(ox)en", "${1}"),
    (r"(?i)(alias|status)(es)?$", "${1}"),
    (r"(?i)(octop|vir)(us|i)$", "${1}us"),
    (r"(?i)^(a)x[ie]s$", "${1}xis"),
    (r"(?i)(cris|test)(is|es)$", "${1}is"),
    (r"(?i)(shoe)s$", "${1}"),
    (r"(?i)(o)es$", "${1}"),
    (r"(?i)(bus)(es)?$", "${1}"),
    (r"(?i)(m|l)ice$", "${1}ouse"),
    (r"(?i)(x|ch|ss|sh)es$", "${1}"),
    (r"(?i)(m)ovies$", "${1}ovie"),
    (r"(?i)(s)eries$", "${1}eries"),
    (r"(?i)([^aeiouy]|qu)ies$", "${1}y"),
    (r"(?i)([lr])ves$", "${1}f"),
    (r"(?i)(tive)s$", "${1}"),
    (r"(?i)(hive)s$", "${1}"),
    (r"(?i)([^f])ves$", "${1}fe"),
    (r"(?i)(t)he(sis|ses)$", "${1}hesis"),
    (r"(?i)(s)ynop(sis|ses)$", "${1}ynopsis"),
    (r"(?i)(p)rogno(sis|ses)$", "${1}rognosis"),
    (r"(?i)(p)arenthe(sis|ses)$", "${1}arenthesis"),
    (r"(?i)(d)iagno(sis|ses)$", "${1}iagnosis"),
    (r"(?i)(b)a(sis|ses)$", "${1}asis"),
    (r"(?i)(a)naly(sis|ses)$", "${1}nalysis"),
    (r"(?i)([ti])a$", "${1}um"),
    (r"(?i)(n)ews$", "${1}ews"),
    (r"(?i)(ss)$", "${1}"),
    (r"(?i)s$", ""),
];

/// Uncountable-word patterns, then (rule, replacement) pairs.
type Compiled = (Vec<Regex>, Vec<(Regex, &'static str)>);

static COMPILED: Lazy<Compiled> = Lazy::new(|| {
    let unc = UNCOUNTABLES.iter().map(|u| Regex::new(&format!(r"(?i)\b({u})\z")).unwrap()).collect();
    // Python's `$` also matches before a final newline; tokens never contain one.
    let rules = RULES.iter().map(|(p, r)| (Regex::new(p).unwrap(), *r)).collect();
    (unc, rules)
});

pub fn singularize(word: &str) -> String {
    let (unc, rules) = &*COMPILED;
    if unc.iter().any(|u| u.is_match(word)) {
        return word.to_string();
    }
    for (re, rep) in rules {
        if re.is_match(word) {
            return re.replace_all(word, *rep).into_owned();
        }
    }
    word.to_string()
}
