// Development aid: compare against a Java dump given in PTB_DUMP (json {captions, java}).
#[test]
#[ignore]
fn dump_mismatches() {
    let path = std::env::var("PTB_DUMP").unwrap();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let caps = v["captions"].as_array().unwrap();
    let java = v["java"].as_array().unwrap();
    let mut bad = 0;
    let lines: Vec<String> = caps.iter().map(|c| c.as_str().unwrap().replace('\n', " ")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let all = flamingo_eval::metrics::ptb::ptb_tokenize_lines(&refs);
    for ((c, j), ours) in lines.iter().zip(java).zip(all) {
        let ours = ours.join(" ");
        let j = j.as_str().unwrap().trim_end();
        if ours != j {
            bad += 1;
            if bad < 80 {
                println!("IN  {c:?}\nJAV {j:?}\nOUR {ours:?}");
            }
        }
    }
    println!("mismatches: {bad} of {}", caps.len());
}
