//! A small XML reader for `parse_xml`: elements become objects, attributes `@name` keys,
//! text `#text` (or the element's value when it has nothing else), repeated children arrays.

use serde_json::{Map, Value as Json};

struct Reader<'a> {
    s: &'a str,
    depth: usize,
}

fn unescape(t: &str) -> String {
    t.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

impl Reader<'_> {
    /// Skips whitespace, declarations, processing instructions and comments; `None` when one of
    /// them is not terminated.
    fn skip_misc(&mut self) -> Option<()> {
        loop {
            self.s = self.s.trim_start();
            let end = if self.s.starts_with("<?") {
                self.s.find("?>").map(|p| p + 2)
            } else if self.s.starts_with("<!--") {
                self.s.find("-->").map(|p| p + 3)
            } else if self.s.starts_with("<!") && !self.s.starts_with("<![CDATA[") {
                self.s.find('>').map(|p| p + 1)
            } else {
                return Some(());
            };
            self.s = &self.s[end?..];
        }
    }

    /// One element, from its `<`: its name and its JSON value.
    fn element(&mut self) -> Option<(String, Json)> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        self.s = self.s.strip_prefix('<')?;
        let name_end = self
            .s
            .find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
        let name = self.s[..name_end].to_string();
        if name.is_empty() {
            return None;
        }
        self.s = &self.s[name_end..];
        let mut obj = Map::new();
        loop {
            self.s = self.s.trim_start();
            if let Some(r) = self.s.strip_prefix("/>") {
                self.s = r;
                self.depth -= 1;
                return Some((
                    name,
                    if obj.is_empty() {
                        Json::Null
                    } else {
                        Json::Object(obj)
                    },
                ));
            }
            if let Some(r) = self.s.strip_prefix('>') {
                self.s = r;
                break;
            }
            let eq = self.s.find('=')?;
            let attr = self.s[..eq].trim().to_string();
            let r = self.s[eq + 1..].trim_start();
            let q = r.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let end = r[1..].find(q)?;
            obj.insert(format!("@{attr}"), Json::String(unescape(&r[1..1 + end])));
            self.s = &r[1 + end + 1..];
        }
        let mut text = String::new();
        loop {
            let lt = self.s.find('<')?;
            text.push_str(&self.s[..lt]);
            self.s = &self.s[lt..];
            if let Some(r) = self.s.strip_prefix("</") {
                let gt = r.find('>')?;
                if r[..gt].trim() != name {
                    return None;
                }
                self.s = &r[gt + 1..];
                break;
            }
            if let Some(r) = self.s.strip_prefix("<![CDATA[") {
                let end = r.find("]]>")?;
                text.push_str(&r[..end]);
                self.s = &r[end + 3..];
                continue;
            }
            if self.s.starts_with("<!--") || self.s.starts_with("<?") {
                self.skip_misc()?;
                continue;
            }
            let (child, value) = self.element()?;
            match obj.get_mut(&child) {
                Some(Json::Array(items)) => items.push(value),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Json::Array(vec![first, value]);
                }
                None => {
                    obj.insert(child, value);
                }
            }
        }
        self.depth -= 1;
        let text = unescape(text.trim());
        if obj.is_empty() {
            return Some((
                name,
                if text.is_empty() {
                    Json::Null
                } else {
                    Json::String(text)
                },
            ));
        }
        if !text.is_empty() {
            obj.insert("#text".to_string(), Json::String(text));
        }
        Some((name, Json::Object(obj)))
    }
}

/// The JSON form of an XML document, or `None` when it is not well-formed.
pub(crate) fn to_json(s: &str) -> Option<Json> {
    let mut r = Reader { s, depth: 0 };
    r.skip_misc()?;
    let (name, value) = r.element()?;
    r.skip_misc()?;
    if !r.s.trim().is_empty() {
        return None;
    }
    let mut map = Map::new();
    map.insert(name, value);
    Some(Json::Object(map))
}
