//! A small document model rendered twice: Markdown (`report.md`) and a self-contained HTML page
//! (`report.html`: styles inline, plots embedded as inline SVG, no network access).

use crate::report::junit::escape;

#[derive(Debug, Clone)]
pub enum Block {
    Heading(u8, String),
    Paragraph(String),
    /// Header row, body rows; cells are plain text.
    Table(Vec<String>, Vec<Vec<String>>),
    List(Vec<String>),
    /// A paragraph of text followed by a link to a file of the report (`href` relative to the report).
    Link { text: String, label: String, href: String },
    /// A plot: Markdown links to `file`; HTML embeds `svg` inline.
    Figure { file: String, png: String, svg: String, caption: String },
}

#[derive(Debug, Clone, Default)]
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

impl Document {
    pub fn push(&mut self, b: Block) {
        self.blocks.push(b);
    }

    pub fn markdown(&self) -> String {
        let mut s = format!("# {}\n\n", self.title);
        for b in &self.blocks {
            match b {
                Block::Heading(l, t) => s.push_str(&format!("{} {t}\n\n", "#".repeat(*l as usize))),
                Block::Paragraph(t) => s.push_str(&format!("{t}\n\n")),
                Block::Table(h, rows) => {
                    s.push_str(&format!("| {} |\n", h.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")));
                    s.push_str(&format!("|{}\n", "---|".repeat(h.len())));
                    for r in rows {
                        s.push_str(&format!("| {} |\n", r.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | ")));
                    }
                    s.push('\n');
                }
                Block::List(items) => {
                    for i in items {
                        s.push_str(&format!("- {i}\n"));
                    }
                    s.push('\n');
                }
                Block::Link { text, label, href } => s.push_str(&format!("{text} [{}]({href})\n\n", md_cell(label))),
                Block::Figure { file, png, caption, .. } => {
                    s.push_str(&format!("![{caption}]({file})\n\n({caption}; PNG: [{png}]({png}))\n\n"));
                }
            }
        }
        s
    }

    pub fn html(&self) -> String {
        let mut s = String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        s.push_str(&format!("<title>{}</title>\n", escape(&self.title)));
        s.push_str(
            "<style>\nbody{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;background:#fff}\n\
             h1{font-size:1.6em;border-bottom:2px solid #345}h2{font-size:1.3em;margin-top:1.6em;color:#234}h3{font-size:1.1em}\n\
             table{border-collapse:collapse;margin:0.6em 0 1.2em}th,td{border:1px solid #bbb;padding:4px 9px;text-align:right}\n\
             th{background:#e8eef4}td:first-child,th:first-child{text-align:left}tr:nth-child(even) td{background:#f6f8fa}\n\
             figure{margin:1em 0}figcaption{font-size:0.9em;color:#555}code{background:#f0f0f0;padding:0 3px}\n</style>\n</head>\n<body>\n",
        );
        s.push_str(&format!("<h1>{}</h1>\n", escape(&self.title)));
        for b in &self.blocks {
            match b {
                Block::Heading(l, t) => s.push_str(&format!("<h{l}>{}</h{l}>\n", inline_code(t))),
                Block::Paragraph(t) => s.push_str(&format!("<p>{}</p>\n", inline_code(t))),
                Block::Table(h, rows) => {
                    s.push_str("<table>\n<tr>");
                    for c in h {
                        s.push_str(&format!("<th>{}</th>", escape(c)));
                    }
                    s.push_str("</tr>\n");
                    for r in rows {
                        s.push_str("<tr>");
                        for c in r {
                            s.push_str(&format!("<td>{}</td>", inline_code(c)));
                        }
                        s.push_str("</tr>\n");
                    }
                    s.push_str("</table>\n");
                }
                Block::List(items) => {
                    s.push_str("<ul>\n");
                    for i in items {
                        s.push_str(&format!("<li>{}</li>\n", inline_code(i)));
                    }
                    s.push_str("</ul>\n");
                }
                Block::Link { text, label, href } => {
                    s.push_str(&format!("<p>{} <a href=\"{}\">{}</a></p>\n", inline_code(text), escape(href), escape(label)))
                }
                Block::Figure { svg, caption, .. } => {
                    // The SVG document minus its XML declaration, inline.
                    let body = svg.trim_start_matches(|c| c != '<');
                    let body = if body.starts_with("<?xml") { body.split_once("?>").map(|x| x.1).unwrap_or(body) } else { body };
                    s.push_str(&format!("<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n", body.trim(), escape(caption)));
                }
            }
        }
        s.push_str("</body>\n</html>\n");
        s
    }
}

/// Escapes text and turns `code` spans into <code> elements.
fn inline_code(t: &str) -> String {
    let mut out = String::new();
    for (i, part) in t.split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{}</code>", escape(part)));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}
