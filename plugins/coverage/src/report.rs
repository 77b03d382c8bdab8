//! Coverage reports as real tools write them: lcov tracefiles (geninfo,
//! llvm-cov/cargo-llvm-cov, coverage.py, Istanbul/nyc) and Cobertura XML
//! (coverage.py, Istanbul/nyc, JaCoCo through cover2cover).

use std::collections::HashMap;

/// Coverage of one source file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileCoverage {
    pub path: String,
    pub lines_found: u64,
    pub lines_hit: u64,
    pub branches_found: u64,
    pub branches_hit: u64,
}

/// A whole report: one entry per source file, in report order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub format: &'static str,
    pub files: Vec<FileCoverage>,
}

impl Report {
    pub fn lines(&self) -> (u64, u64) {
        self.files
            .iter()
            .fold((0, 0), |(f, h), c| (f + c.lines_found, h + c.lines_hit))
    }

    pub fn branches(&self) -> (u64, u64) {
        self.files.iter().fold((0, 0), |(f, h), c| {
            (f + c.branches_found, h + c.branches_hit)
        })
    }
}

/// Parses an lcov tracefile or a Cobertura XML report, telling them apart
/// by their first character.
pub fn parse(text: &str) -> Result<Report, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('<') {
        cobertura(text)
    } else {
        lcov(text)
    }
}

/// Percentage with one decimal, or `None` when nothing was measured.
pub fn percent(hit: u64, found: u64) -> Option<f64> {
    (found > 0).then(|| (hit as f64 * 1000.0 / found as f64).round() / 10.0)
}

/// One lcov record's measurements while it is read.
#[derive(Default)]
struct Record {
    path: String,
    first_line: usize,
    da_found: u64,
    da_hit: u64,
    lf: Option<u64>,
    lh: Option<u64>,
    brda_found: u64,
    brda_hit: u64,
    brf: Option<u64>,
    brh: Option<u64>,
    /// Kept only for files that appear in more than one record, so that
    /// their lines are counted once.
    lines: Option<HashMap<u32, u64>>,
    branches: Option<HashMap<(u32, String, String), u64>>,
}

/// lcov's tracefile format (`geninfo(1)`): records from `SF:` to
/// `end_of_record`. Lines and branches are counted from `DA` and `BRDA`;
/// the `LF`/`LH`/`BRF`/`BRH` summaries are used where a tool wrote only
/// them. A file in several records (several test names) is merged.
pub fn lcov(text: &str) -> Result<Report, String> {
    // Pass 1: which files appear in more than one record.
    let mut seen: HashMap<&str, u32> = HashMap::new();
    for line in text.lines() {
        if let Some(path) = line.trim_end().strip_prefix("SF:") {
            *seen.entry(path).or_default() += 1;
        }
    }
    if seen.is_empty() {
        return Err("no `SF:` records: this is not an lcov tracefile".into());
    }
    let mut merged: HashMap<String, Record> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut files: Vec<FileCoverage> = Vec::new();
    let mut current: Option<Record> = None;
    // A record cut off mid-line is truncation, not a malformed record.
    let cut_at = (!text.ends_with('\n')).then(|| text.lines().count());
    for (index, raw) in text.lines().enumerate() {
        let n = index + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(path) = line.strip_prefix("SF:") {
            if let Some(open) = &current {
                return Err(format!(
                    "line {n}: `SF:` before the record for {} (line {}) ended; the report is malformed",
                    open.path, open.first_line
                ));
            }
            let repeated = seen.get(path).copied().unwrap_or(0) > 1;
            current = Some(Record {
                path: path.to_string(),
                first_line: n,
                lines: repeated.then(HashMap::new),
                branches: repeated.then(HashMap::new),
                ..Record::default()
            });
            continue;
        }
        if line == "end_of_record" {
            let record = current
                .take()
                .ok_or_else(|| format!("line {n}: `end_of_record` without a record"))?;
            if record.lines.is_some() {
                merge(&mut merged, &mut order, record);
            } else {
                files.push(finish(&record));
            }
            continue;
        }
        let Some((tag, value)) = line.split_once(':') else {
            return Err(format!(
                "line {n}: '{}' is not an lcov record",
                shorten(line)
            ));
        };
        let Some(record) = current.as_mut() else {
            // TN: and VER: come before any SF:.
            continue;
        };
        let bad = || {
            if cut_at == Some(n) {
                format!("the report ends mid-record at line {n}; it looks truncated")
            } else {
                format!("line {n}: malformed `{tag}` record '{}'", shorten(line))
            }
        };
        match tag {
            "DA" => {
                let mut parts = value.split(',');
                let number: u32 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
                let hits = parts.next().and_then(hit_count).ok_or_else(bad)?;
                match &mut record.lines {
                    Some(map) => {
                        let h = map.entry(number).or_default();
                        *h = (*h).max(hits);
                    }
                    None => {
                        record.da_found += 1;
                        record.da_hit += u64::from(hits > 0);
                    }
                }
            }
            "BRDA" => {
                // BRDA:<line>,<block>,<branch>,<taken>; the branch may be a
                // description with commas (coverage.py), taken may be '-'.
                let (head, taken) = value.rsplit_once(',').ok_or_else(bad)?;
                let mut parts = head.splitn(3, ',');
                let number: u32 = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
                let block = parts.next().ok_or_else(bad)?;
                let branch = parts.next().ok_or_else(bad)?;
                let taken = if taken == "-" {
                    0
                } else {
                    hit_count(taken).ok_or_else(bad)?
                };
                match &mut record.branches {
                    Some(map) => {
                        let t = map
                            .entry((number, block.to_string(), branch.to_string()))
                            .or_default();
                        *t = (*t).max(taken);
                    }
                    None => {
                        record.brda_found += 1;
                        record.brda_hit += u64::from(taken > 0);
                    }
                }
            }
            "LF" => record.lf = Some(value.parse().map_err(|_| bad())?),
            "LH" => record.lh = Some(value.parse().map_err(|_| bad())?),
            "BRF" => record.brf = Some(value.parse().map_err(|_| bad())?),
            "BRH" => record.brh = Some(value.parse().map_err(|_| bad())?),
            // Functions (FN, FNDA, FNF, FNH, FNL, FNA), test names, versions
            // and checksums carry nothing this report shows.
            _ => {}
        }
    }
    if let Some(open) = current {
        return Err(format!(
            "the report ends inside the record for {} that starts at line {}; it looks truncated",
            open.path, open.first_line
        ));
    }
    files.extend(order.iter().filter_map(|path| merged.get(path)).map(finish));
    Ok(Report {
        format: "lcov",
        files,
    })
}

/// Hit counts are integers, but some tools write them as floats
/// (`1.0`) or overflow them into huge numbers; both count as "hit".
fn hit_count(text: &str) -> Option<u64> {
    let text = text.trim();
    text.parse::<u64>().ok().or_else(|| {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.ceil() as u64)
    })
}

fn merge(merged: &mut HashMap<String, Record>, order: &mut Vec<String>, record: Record) {
    match merged.get_mut(&record.path) {
        None => {
            order.push(record.path.clone());
            merged.insert(record.path.clone(), record);
        }
        Some(into) => {
            for (line, hits) in record.lines.unwrap_or_default() {
                let h = into.lines.get_or_insert_default().entry(line).or_default();
                *h = (*h).max(hits);
            }
            for (key, taken) in record.branches.unwrap_or_default() {
                let t = into
                    .branches
                    .get_or_insert_default()
                    .entry(key)
                    .or_default();
                *t = (*t).max(taken);
            }
            into.lf = into.lf.max(record.lf);
            into.lh = into.lh.max(record.lh);
            into.brf = into.brf.max(record.brf);
            into.brh = into.brh.max(record.brh);
        }
    }
}

fn finish(r: &Record) -> FileCoverage {
    let (da_found, da_hit) = match &r.lines {
        Some(map) => (
            map.len() as u64,
            map.values().filter(|h| **h > 0).count() as u64,
        ),
        None => (r.da_found, r.da_hit),
    };
    let (brda_found, brda_hit) = match &r.branches {
        Some(map) => (
            map.len() as u64,
            map.values().filter(|t| **t > 0).count() as u64,
        ),
        None => (r.brda_found, r.brda_hit),
    };
    // Detail wins over summaries; summaries stand in where detail is absent.
    let (lines_found, lines_hit) = if da_found > 0 {
        (da_found, da_hit)
    } else {
        (r.lf.unwrap_or(0), r.lh.unwrap_or(0))
    };
    let (branches_found, branches_hit) = if brda_found > 0 {
        (brda_found, brda_hit)
    } else {
        (r.brf.unwrap_or(0), r.brh.unwrap_or(0))
    };
    FileCoverage {
        path: r.path.clone(),
        lines_found,
        lines_hit: lines_hit.min(lines_found),
        branches_found,
        branches_hit: branches_hit.min(branches_found),
    }
}

fn shorten(line: &str) -> String {
    let mut s: String = line.chars().take(80).collect();
    if s.len() < line.len() {
        s.push('…');
    }
    s
}

/// Per line of a file: hits, covered branches, total branches.
type LineMap = HashMap<u32, (u64, u64, u64)>;

/// Cobertura XML: `<coverage><packages><package><classes><class
/// filename=…><lines><line number hits branch condition-coverage/>`. Lines
/// under `<methods>` repeat the class's lines and are skipped; classes that
/// share a file (inner classes, cover2cover's output) are merged by line.
pub fn cobertura(text: &str) -> Result<Report, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0usize;
    let mut saw_root = false;
    let mut in_methods = 0usize;
    let mut file: Option<String> = None;
    let mut order: Vec<String> = Vec::new();
    let mut by_file: HashMap<String, LineMap> = HashMap::new();
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("malformed Cobertura XML near byte {at}: {e}"))?;
        let (element, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                match e.local_name().as_ref() {
                    b"methods" => in_methods = in_methods.saturating_sub(1),
                    b"class" => file = None,
                    _ => {}
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let name = element.local_name();
        if !saw_root {
            if name.as_ref() != b"coverage" {
                return Err(format!(
                    "the XML root is <{}>, not Cobertura's <coverage>; convert JaCoCo XML with cover2cover first",
                    String::from_utf8_lossy(name.as_ref())
                ));
            }
            saw_root = true;
        }
        if !empty {
            depth += 1;
        }
        match name.as_ref() {
            b"methods" if !empty => in_methods += 1,
            b"class" => {
                let path = attribute(element, b"filename")?
                    .ok_or_else(|| format!("a <class> near byte {at} has no filename attribute"))?;
                if !by_file.contains_key(&path) {
                    order.push(path.clone());
                    by_file.insert(path.clone(), HashMap::new());
                }
                file = (!empty).then_some(path);
            }
            b"line" if in_methods == 0 => {
                let Some(path) = &file else { continue };
                let bad = |what: &str| format!("a <line> of {path} near byte {at} has {what}");
                let number: u32 = attribute(element, b"number")?
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| bad("no valid number"))?;
                let hits = attribute(element, b"hits")?
                    .and_then(|h| hit_count(&h))
                    .ok_or_else(|| bad("no valid hits"))?;
                let (covered, total) = match attribute(element, b"condition-coverage")? {
                    Some(c) => conditions(&c).ok_or_else(|| {
                        bad(&format!("condition-coverage '{c}' not like '50% (1/2)'"))
                    })?,
                    None => (0, 0),
                };
                let entry = by_file
                    .get_mut(path)
                    .expect("every class's file is registered")
                    .entry(number)
                    .or_default();
                entry.0 = entry.0.max(hits);
                entry.1 = entry.1.max(covered);
                entry.2 = entry.2.max(total);
            }
            _ => {}
        }
    }
    if !saw_root {
        return Err("the report is empty".into());
    }
    if depth > 0 {
        return Err("the report ends before </coverage>; it looks truncated".into());
    }
    let files = order
        .into_iter()
        .map(|path| {
            let lines = &by_file[&path];
            FileCoverage {
                lines_found: lines.len() as u64,
                lines_hit: lines.values().filter(|l| l.0 > 0).count() as u64,
                branches_found: lines.values().map(|l| l.2).sum(),
                branches_hit: lines.values().map(|l| l.1).sum(),
                path,
            }
        })
        .collect();
    Ok(Report {
        format: "Cobertura",
        files,
    })
}

fn attribute(
    element: &quick_xml::events::BytesStart<'_>,
    name: &[u8],
) -> Result<Option<String>, String> {
    for a in element.attributes() {
        let a = a.map_err(|e| format!("malformed attribute: {e}"))?;
        if a.key.local_name().as_ref() == name {
            return a
                .unescape_value()
                .map(|v| Some(v.into_owned()))
                .map_err(|e| format!("malformed attribute value: {e}"));
        }
    }
    Ok(None)
}

/// `"50% (1/2)"` → (1, 2).
fn conditions(text: &str) -> Option<(u64, u64)> {
    let inner = text.split_once('(')?.1.split_once(')')?.0;
    let (covered, total) = inner.split_once('/')?;
    let (covered, total) = (covered.trim().parse().ok()?, total.trim().parse().ok()?);
    (covered <= total).then_some((covered, total))
}
