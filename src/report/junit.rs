//! JUnit XML (the Ant / Jenkins / GitLab / GitHub-annotations dialect), written by hand: a `<testsuites>`
//! root, one `<testsuite>` per benchmark, one `<testcase>` per check, `<failure>` for a regression and
//! `<error>` for inputs that cannot be compared.

/// One check's outcome.
#[derive(Debug, Clone)]
pub enum Outcome {
    Passed,
    Failed { message: String, detail: String },
    Error { message: String, detail: String },
}

#[derive(Debug, Clone)]
pub struct TestCase {
    pub classname: String,
    pub name: String,
    pub outcome: Outcome,
    /// Shown by CI systems beside the case (the numbers).
    pub system_out: String,
}

#[derive(Debug, Clone)]
pub struct TestSuite {
    pub name: String,
    pub cases: Vec<TestCase>,
}

/// Escapes text for XML content and attribute values (and drops characters XML 1.0 cannot carry).
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            '\n' | '\t' | '\r' => s.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => s.push('\u{FFFD}'),
            c => s.push(c),
        }
    }
    s
}

/// The XML document for `suites` under a root named `name`.
pub fn render(name: &str, suites: &[TestSuite]) -> String {
    let count = |s: &TestSuite, f: fn(&Outcome) -> bool| s.cases.iter().filter(|c| f(&c.outcome)).count();
    let fail = |o: &Outcome| matches!(o, Outcome::Failed { .. });
    let err = |o: &Outcome| matches!(o, Outcome::Error { .. });
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites.iter().map(|s| count(s, fail)).sum();
    let errors: usize = suites.iter().map(|s| count(s, err)).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"0\">\n",
        escape(name)
    ));
    for (i, s) in suites.iter().enumerate() {
        x.push_str(&format!(
            "  <testsuite name=\"{}\" id=\"{i}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\" time=\"0\">\n",
            escape(&s.name),
            s.cases.len(),
            count(s, fail),
            count(s, err)
        ));
        for c in &s.cases {
            x.push_str(&format!("    <testcase name=\"{}\" classname=\"{}\" time=\"0\">\n", escape(&c.name), escape(&c.classname)));
            match &c.outcome {
                Outcome::Passed => {}
                Outcome::Failed { message, detail } => x.push_str(&format!(
                    "      <failure message=\"{}\" type=\"regression\">{}</failure>\n",
                    escape(message),
                    escape(detail)
                )),
                Outcome::Error { message, detail } => x.push_str(&format!(
                    "      <error message=\"{}\" type=\"incomparable\">{}</error>\n",
                    escape(message),
                    escape(detail)
                )),
            }
            if !c.system_out.is_empty() {
                x.push_str(&format!("      <system-out>{}</system-out>\n", escape(&c.system_out)));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}
