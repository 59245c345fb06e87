// Development aid: compare against a Java dump given in PTB_DUMP (json {captions, java}).
#[test]
#[ignore]
fn dump_mismatches() {
    let path = std::env::var("PTB_DUMP").unwrap();
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let caps = v["captions"].as_array().unwrap();
    let java = v["java"].as_array().unwrap();
    let mut bad = 0;
    for (c, j) in caps.iter().zip(java) {
        let c = c.as_str().unwrap().replace('\n', " ");
        let ours = flamingo_eval::metrics::ptb::ptb_tokens_unfiltered(&c).join(" ");
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
