//! The benchmark file's keys, read off the parser itself: [`benchmark_keys`] walks the `Deserialize`
//! implementation of [`super::spec::BenchmarkSpec`] with a recording deserializer, so the list is every key
//! the parser accepts (nested ones as `dataset.query.questions`), with its value kind and, for a key taking
//! one of several words (`task: generate | rank`), the accepted words. `docs/benchmarks.md` is checked
//! against it by a test, and `flamingo-eval benchmarks keys` prints it.

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess, Visitor};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// One key of the benchmark file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// Dotted path, e.g. `dataset.query.questions`.
    pub path: String,
    /// Value kind: `string`, `integer`, `number`, `boolean`, `mapping`, `list of ...`, or `one of`.
    pub kind: String,
    /// The accepted words for a `one of` key (also for a list of them).
    pub variants: Vec<String>,
}

/// Every key a benchmark file may have, in the parser's field order (parents before children).
pub fn benchmark_keys() -> Vec<KeyInfo> {
    trace::<super::spec::BenchmarkSpec>()
}

/// Keys of any strictly parsed (`deny_unknown_fields`) configuration type.
pub fn trace<T: de::DeserializeOwned>() -> Vec<KeyInfo> {
    let rec = Recorder::default();
    // The recording deserializer gives every field a neutral value; the result itself is not used.
    let _ = T::deserialize(Tracer { path: String::new(), rec: &rec });
    let order = rec.order.into_inner();
    let kinds = rec.kinds.into_inner();
    order
        .into_iter()
        .map(|p| {
            let (kind, variants) = kinds.get(&p).cloned().unwrap_or_else(|| ("unknown".into(), vec![]));
            KeyInfo { path: p, kind, variants }
        })
        .collect()
}

#[derive(Default)]
struct Recorder {
    order: RefCell<Vec<String>>,
    kinds: RefCell<BTreeMap<String, (String, Vec<String>)>>,
}

impl Recorder {
    fn key(&self, path: &str) {
        let mut o = self.order.borrow_mut();
        if !o.iter().any(|p| p == path) {
            o.push(path.to_string());
        }
    }
    /// Records the kind at `path`; list elements (`path[]`) make their list's kind `list of ...`.
    fn kind(&self, path: &str, kind: &str, variants: &[&str]) {
        let vars: Vec<String> = variants.iter().map(|v| v.to_string()).collect();
        let mut k = self.kinds.borrow_mut();
        match path.strip_suffix("[]") {
            Some(list) => {
                k.insert(list.to_string(), (format!("list of {kind}"), vars));
            }
            None => {
                k.entry(path.to_string()).or_insert((kind.to_string(), vars));
            }
        }
    }
}

struct Tracer<'a> {
    path: String,
    rec: &'a Recorder,
}

type Error = de::value::Error;

impl<'de, 'a> Deserializer<'de> for Tracer<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.rec.kind(&self.path, "any", &[]);
        v.visit_unit()
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.rec.kind(&self.path, "boolean", &[]);
        v.visit_bool(false)
    }
    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_i64(v)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_i64(v)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_i64(v)
    }
    fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.rec.kind(&self.path, "integer", &[]);
        v.visit_i64(0)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_u64(v)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.rec.kind(&self.path, "integer", &[]);
        v.visit_u64(0)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_f64(v)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.rec.kind(&self.path, "number", &[]);
        v.visit_f64(0.0)
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }
    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.rec.kind(&self.path, "string", &[]);
        v.visit_str("")
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_some(self)
    }
    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, Error> {
        v.visit_newtype_struct(self)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_seq(OneElement { path: format!("{}[]", self.path), rec: self.rec, done: false })
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(self, _: &'static str, _: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.rec.kind(&self.path, "mapping", &[]);
        v.visit_map(Fields { path: self.path, fields: &[], i: 0, rec: self.rec })
    }
    fn deserialize_struct<V: Visitor<'de>>(self, _: &'static str, fields: &'static [&'static str], v: V) -> Result<V::Value, Error> {
        if !self.path.is_empty() {
            self.rec.kind(&self.path, "mapping", &[]);
        }
        v.visit_map(Fields { path: self.path, fields, i: 0, rec: self.rec })
    }
    fn deserialize_enum<V: Visitor<'de>>(self, _: &'static str, variants: &'static [&'static str], v: V) -> Result<V::Value, Error> {
        self.rec.kind(&self.path, "one of", variants);
        v.visit_enum(FirstVariant(variants.first().copied().unwrap_or("")))
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }
    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
}

struct Fields<'a> {
    path: String,
    fields: &'static [&'static str],
    i: usize,
    rec: &'a Recorder,
}

impl Fields<'_> {
    fn child(&self) -> String {
        let f = self.fields[self.i - 1];
        if self.path.is_empty() { f.to_string() } else { format!("{}.{f}", self.path) }
    }
}

impl<'de> MapAccess<'de> for Fields<'_> {
    type Error = Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some(&f) = self.fields.get(self.i) else { return Ok(None) };
        self.i += 1;
        self.rec.key(&self.child());
        seed.deserialize(f.into_deserializer()).map(Some)
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        seed.deserialize(Tracer { path: self.child(), rec: self.rec })
    }
}

struct OneElement<'a> {
    path: String,
    rec: &'a Recorder,
    done: bool,
}

impl<'de> SeqAccess<'de> for OneElement<'_> {
    type Error = Error;
    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<Option<S::Value>, Error> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        seed.deserialize(Tracer { path: self.path.clone(), rec: self.rec }).map(Some)
    }
}

struct FirstVariant(&'static str);

impl<'de> EnumAccess<'de> for FirstVariant {
    type Error = Error;
    type Variant = Self;
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let v = seed.deserialize(self.0.into_deserializer())?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for FirstVariant {
    type Error = Error;
    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, _: S) -> Result<S::Value, Error> {
        Err(de::Error::custom("data-carrying enum variants are not traced"))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("data-carrying enum variants are not traced"))
    }
    fn struct_variant<V: Visitor<'de>>(self, _: &'static [&'static str], _: V) -> Result<V::Value, Error> {
        Err(de::Error::custom("data-carrying enum variants are not traced"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_nested_keys_kinds_and_words() {
        let keys = benchmark_keys();
        let get = |p: &str| keys.iter().find(|k| k.path == p).unwrap_or_else(|| panic!("{p} not traced: {keys:?}"));
        assert_eq!(get("name").kind, "string");
        assert_eq!(get("task").variants, vec!["generate", "rank"]);
        assert_eq!(get("shots").kind, "list of integer");
        assert_eq!(get("dataset").kind, "mapping");
        assert_eq!(get("dataset.query.questions").kind, "string");
        assert_eq!(get("dataset.layout").variants, vec!["vqa", "karpathy", "hateful_memes", "imagenet", "video_qa"]);
        assert_eq!(get("generation.length_penalty").kind, "number");
        assert_eq!(get("allow_paths_outside_root").kind, "boolean");
        assert_eq!(get("ranking.candidates").kind, "list of string");
        // Parents come before their children, and no key is listed twice.
        let pos = |p: &str| keys.iter().position(|k| k.path == p).unwrap();
        assert!(pos("dataset") < pos("dataset.query") && pos("dataset.query") < pos("dataset.query.pattern"));
        let mut paths: Vec<&str> = keys.iter().map(|k| k.path.as_str()).collect();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), keys.len());
    }
}
