//! Deterministic CEF-over-syslog corpora.
//!
//! Two shapes, one message per LF-terminated line:
//!
//! * [`mcas`]: what the Microsoft Defender for Cloud Apps (MCAS) SIEM agent
//!   emits: RFC 3164 framing (`<PRI>Mmm dd hh:mm:ss host `), CEF with vendor
//!   `MCAS`, product `SIEM_Agent`, mostly activities and about 10% alerts.
//!   Activity lines carry the escaped `\=` inside the `cs1` portal URL, as
//!   the agent writes it.
//! * [`mixed`]: firewalls (Palo Alto, Fortinet, Check Point), a web proxy,
//!   a PAM vault, an EDR agent, a WAF and a generic shape full of header
//!   escapes (`\|`, `\\`) and extension escapes (`\=`, `\\`, `\n`), values
//!   with spaces; about 15% of the lines are RFC 5424 framed, the rest
//!   RFC 3164.
//!
//! Everything derives from one small self-contained PRNG ([`SplitMix64`]),
//! so the same `(lines, seed)` gives the same bytes on every platform and
//! with every version of every dependency.

/// The seed used by the harness unless told otherwise.
pub const DEFAULT_SEED: u64 = 20_241_128;

/// The number of lines the end-to-end harness uses unless told otherwise.
pub const DEFAULT_LINES: usize = 200_000;

/// Start of the simulated clock: 2024-11-28T06:44:44Z, in milliseconds.
const EPOCH_MS: u64 = 1_732_776_284_000;

/// Generates `lines` MCAS SIEM-agent lines (RFC 3164 framed CEF), each
/// terminated by `\n`.
pub fn mcas(lines: usize, seed: u64) -> Vec<u8> {
    let mut g = Gen::new(seed, 0x4d43_4153);
    let mut out = Vec::with_capacity(lines.saturating_mul(720));
    for _ in 0..lines {
        let line = g.mcas_line();
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Generates `lines` lines of mixed vendor CEF (about 15% RFC 5424 framed,
/// the rest RFC 3164), each terminated by `\n`.
pub fn mixed(lines: usize, seed: u64) -> Vec<u8> {
    let mut g = Gen::new(seed, 0x4d49_5845);
    let mut out = Vec::with_capacity(lines.saturating_mul(560));
    for _ in 0..lines {
        let line = g.mixed_line();
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// Iterates over the lines of a corpus, without their `\n` terminator.
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
}

/// SplitMix64 (Steele, Lea and Flood): a tiny, fast generator whose output is
/// fixed by its definition, which is what a reproducible corpus needs.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`), by multiply-and-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// The low `n` bits of a fresh draw (`n <= 64`).
    pub fn bits(&mut self, n: u32) -> u64 {
        if n >= 64 {
            self.next_u64()
        } else {
            self.next_u64() & ((1u64 << n) - 1)
        }
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An index drawn with the given relative weights (not all zero).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len() - 1
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// UTC civil time of a Unix timestamp: (year, month 1..=12, day, h, m, s).
fn civil(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Days-to-date on the proleptic Gregorian calendar, eras of 400 years
    // starting on 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day, rem / 3600, rem / 60 % 60, rem % 60)
}

/// `Mmm dd hh:mm:ss` with a space-padded day, as RFC 3164 writes it.
fn ts3164(secs: u64) -> String {
    let (_, mo, d, h, mi, s) = civil(secs);
    let month = MONTHS[(mo - 1) as usize];
    format!("{month} {d:>2} {h:02}:{mi:02}:{s:02}")
}

/// RFC 3339 UTC with milliseconds, as RFC 5424 writes it.
fn ts3339(ms: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    let frac = ms % 1000;
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:03}Z")
}

/// Escapes a CEF extension value: `\` `=` and line feeds.
fn ext_esc(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 4);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '=' => s.push_str("\\="),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Escapes a CEF header field: `\` and `|`.
fn hdr_esc(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 4);
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '|' => s.push_str("\\|"),
            c => s.push(c),
        }
    }
    s
}

const GIVEN: &[&str] = &[
    "adele", "bruno", "celine", "darius", "emma", "farid", "gita", "hugo", "irene", "jonas",
    "kaito", "lena", "marek", "nadia", "oscar", "priya", "quentin", "rosa", "stefan", "tamar",
    "uma", "vikram", "wanda", "xiu", "yara", "zeno", "agnes", "boris", "chloe", "dalia",
];
const FAMILY: &[&str] = &[
    "andersen",
    "baptiste",
    "castillo",
    "delacroix",
    "eriksen",
    "ferreira",
    "gallagher",
    "hoffmann",
    "ishikawa",
    "jovanovic",
    "kaminski",
    "lindqvist",
    "moreau",
    "nakamura",
    "oliveira",
    "petrov",
    "quinn",
    "romano",
    "schneider",
    "tran",
];
const DOMAINS: &[&str] = &[
    "contoso.com",
    "fabrikam.com",
    "contoso.onmicrosoft.com",
    "northwindtraders.com",
    "adventure-works.com",
];
const TENANTS: &[&str] = &["contoso", "fabrikam", "northwind"];

/// (display name, app id token)
const CLOUD_APPS: &[(&str, &str)] = &[
    ("Office 365", "APPID_OFFICE365"),
    ("Microsoft Exchange Online", "APPID_OUTLOOK"),
    ("Microsoft SharePoint Online", "APPID_SHAREPOINT"),
    ("Microsoft OneDrive for Business", "APPID_ONEDRIVE"),
    ("Microsoft Teams", "APPID_TEAMS"),
    ("Microsoft Azure", "APPID_AZURE"),
    ("Box", "APPID_BOX"),
    ("Dropbox", "APPID_DROPBOX"),
    ("Salesforce", "APPID_SALESFORCE"),
    ("Google Workspace", "APPID_GSUITE"),
    ("Slack", "APPID_SLACK"),
    ("GitHub", "APPID_GITHUB"),
    ("Amazon Web Services", "APPID_AWS"),
];

/// (event class id, activity name, weight, carries target files)
const ACTIVITIES: &[(&str, &str, u32, bool)] = &[
    ("EVENT_CATEGORY_LOGIN", "Log on", 30, false),
    ("EVENT_CATEGORY_LOGOUT", "Log off", 6, false),
    ("EVENT_CATEGORY_FAILED_LOGIN", "Failed log on", 4, false),
    ("EVENT_CATEGORY_DOWNLOAD_FILE", "Download file", 12, true),
    ("EVENT_CATEGORY_UPLOAD_FILE", "Upload file", 10, true),
    ("EVENT_CATEGORY_ACCESS_FILE", "View file", 10, true),
    ("EVENT_CATEGORY_EDIT_FILE", "Edit file", 6, true),
    ("EVENT_CATEGORY_SHARE_FILE", "Share file", 4, true),
    ("EVENT_CATEGORY_DELETE_FILE", "Delete file", 3, true),
    ("EVENT_CATEGORY_SEND_MAIL", "Send mail", 6, false),
    (
        "EVENT_CATEGORY_UNSPECIFIED",
        "Run command: task Update",
        3,
        true,
    ),
];

/// (event class id, name, `{}` replaced by a policy name, severity)
const ALERTS: &[(&str, &str, u8)] = &[
    (
        "ALERT_CABINET_EVENT_MATCH_AUDIT",
        "Activity policy ''{}''",
        3,
    ),
    ("ALERT_CABINET_EVENT_MATCH_OBJECT", "File policy ''{}''", 3),
    (
        "ALERT_CABINET_INLINE_EVENT_MATCH",
        "Session policy ''{}''",
        6,
    ),
    (
        "ALERT_GEOLOCATION_NEW_COUNTRY",
        "Activity from infrequent country",
        6,
    ),
    (
        "MCAS_ALERT_ANUBIS_DETECTION_IMPOSSIBLE_TRAVEL",
        "Impossible travel activity",
        8,
    ),
];
const POLICIES: &[&str] = &[
    "Mass download by a single user",
    "Sensitive file shared externally",
    "Logon from an anonymous proxy",
    "Block upload of labelled files",
    "Admin activity from non-corporate IP",
    "Ransomware activity",
];
const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)",
    "OneDriveSync/23.226.1031.0001 (Windows 11)",
    "curl/8.4.0",
];
const FILES: &[&str] = &[
    "Budget 2025.xlsx",
    "roadmap_v3.pptx",
    "keys.txt",
    "Legal/NDA draft (2).docx",
    "build/release.zip",
    "Kundenliste Überblick.csv",
    "offer=final.pdf",
    "IMG_2231.HEIC",
];
const PUBLIC_FIRST_OCTETS: &[u64] = &[13, 20, 23, 40, 51, 52, 98, 104, 137, 145, 185, 193, 203];

struct Gen {
    rng: SplitMix64,
    now_ms: u64,
}

impl Gen {
    fn new(seed: u64, stream: u64) -> Self {
        // Mixing the stream in keeps mcas() and mixed() independent for one seed.
        let mut rng = SplitMix64::new(seed ^ stream.rotate_left(32));
        rng.next_u64();
        Self {
            rng,
            now_ms: EPOCH_MS,
        }
    }

    fn tick(&mut self) -> u64 {
        self.now_ms += self.rng.below(41);
        self.now_ms
    }

    fn n(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.range(lo, hi)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        *self.rng.pick(items)
    }

    fn public_ip(&mut self) -> String {
        let a = self.pick(PUBLIC_FIRST_OCTETS);
        let (b, c, d) = (self.n(0, 255), self.n(0, 255), self.n(1, 254));
        format!("{a}.{b}.{c}.{d}")
    }

    fn private_ip(&mut self) -> String {
        let k = self.rng.unit();
        if k < 0.5 {
            let (b, c, d) = (self.n(0, 255), self.n(0, 255), self.n(1, 254));
            format!("10.{b}.{c}.{d}")
        } else if k < 0.8 {
            let (c, d) = (self.n(0, 255), self.n(1, 254));
            format!("192.168.{c}.{d}")
        } else {
            let (b, c, d) = (self.n(16, 31), self.n(0, 255), self.n(1, 254));
            format!("172.{b}.{c}.{d}")
        }
    }

    fn ipv6(&mut self) -> String {
        let (a, b, c) = (self.n(0, 0xffff), self.n(0, 0xffff), self.n(1, 0xffff));
        format!("2001:db8:{a:x}:{b:x}::{c:x}")
    }

    fn user(&mut self) -> String {
        let (g, f, d) = (self.pick(GIVEN), self.pick(FAMILY), self.pick(DOMAINS));
        format!("{g}.{f}@{d}")
    }

    fn uuid(&mut self) -> String {
        let r = &mut self.rng;
        let (a, b, c) = (r.bits(32), r.bits(16), r.bits(12));
        let (d, e) = (0x8000 | r.bits(14), r.bits(48));
        format!("{a:08x}-{b:04x}-4{c:03x}-{d:04x}-{e:012x}")
    }

    /// A 24-hex-digit object id, as MCAS uses for alerts and policies.
    fn object_id(&mut self) -> String {
        let (hi, lo) = (self.rng.bits(32), self.rng.bits(64));
        format!("{hi:08x}{lo:016x}")
    }

    // ------------------------------------------------------------- MCAS

    fn mcas_line(&mut self) -> String {
        let ts = self.tick();
        let version = format!(
            "0.{}.{}",
            self.pick(&[111u32, 112, 120, 283]),
            self.n(1, 199)
        );
        let tenant = self.pick(TENANTS);
        let portal = format!("https://{tenant}.portal.cloudappsecurity.com/#/");
        let suser = self.user();
        let (app, app_id) = self.pick(CLOUD_APPS);
        let (class, name, severity, ext) = if self.rng.chance(0.10) {
            let (class, template, severity) = self.pick(ALERTS);
            let policy = self.pick(POLICIES);
            let name = template.replace("{}", policy);
            let alert_id = self.object_id();
            let related: Vec<String> = (0..self.n(1, 2))
                .map(|_| {
                    let back = self.n(0, 9000);
                    format!("{}_{}", ts - back, self.uuid())
                })
                .collect();
            let msg = ext_esc(&format!("{name} was triggered by ''{suser}''"));
            let risk = if self.rng.chance(0.5) {
                String::new()
            } else {
                self.n(1, 10).to_string()
            };
            let apps = if self.rng.chance(0.5) {
                format!("APPID_MCAS,{app_id}")
            } else {
                app_id.to_owned()
            };
            let policy_id = self.object_id();
            let ext = format!(
                "externalId={alert_id} rt={ts} start={ts} end={ts} msg={msg} suser={suser} \
                 destinationServiceName=Microsoft Cloud App Security cn1Label=riskScore cn1={risk} \
                 cs1Label=portalURL cs1={portal}alerts/{alert_id} \
                 cs2Label=uniqueServiceAppIds cs2={apps} cs3Label=relatedAudits cs3={} \
                 cs4Label=policyIDs cs4={policy_id}",
                related.join(",")
            );
            (class, name, severity, ext)
        } else {
            let weights: Vec<u32> = ACTIVITIES.iter().map(|a| a.2).collect();
            let (class, name, _, files) = ACTIVITIES[self.rng.weighted(&weights)];
            let event_id = format!("{ts}_{}", self.uuid());
            let agent = if self.rng.chance(0.3) {
                String::new()
            } else {
                ext_esc(self.pick(AGENTS))
            };
            let targets = if files {
                format!("{},{suser},", ext_esc(self.pick(FILES)))
            } else if self.rng.chance(0.6) {
                String::new()
            } else {
                let t = self
                    .pick(&[suser.as_str(), app, "Default Directory"])
                    .to_owned();
                format!("{t},")
            };
            let dvc = self.public_ip();
            let policy_ids = if self.rng.chance(0.1) {
                self.object_id()
            } else {
                String::new()
            };
            let v6 = if self.rng.chance(0.15) {
                self.ipv6()
            } else {
                String::new()
            };
            let ext = format!(
                "externalId={event_id} rt={ts} start={ts} end={ts} msg={} suser={suser} \
                 destinationServiceName={app} dvc={dvc} requestClientApplication={agent} \
                 cs1Label=portalURL cs1={portal}audits?activity.id\\=eq({event_id},) \
                 cs2Label=uniqueServiceAppIds cs2={app_id} cs3Label=targetObjects cs3={targets} \
                 cs4Label=policyIDs cs4={policy_ids} c6a1Label=\"Device IPv6 Address\" c6a1={v6}",
                ext_esc(name)
            );
            (class, name.to_owned(), 0, ext)
        };
        // local0.info, or local0.warning for high severities.
        let pri = 16 * 8 + if severity < 5 { 6 } else { 4 };
        let host = if self.rng.chance(0.8) {
            "mcas-siem".to_owned()
        } else {
            format!("mcas-siem-{:02}", self.n(1, 4))
        };
        format!(
            "<{pri}>{} {host} CEF:0|MCAS|SIEM_Agent|{version}|{class}|{}|{severity}|{ext}",
            ts3164(ts / 1000),
            hdr_esc(&name)
        )
    }

    // ------------------------------------------------------------ mixed

    fn mixed_line(&mut self) -> String {
        let ts = self.tick();
        let shape = self.rng.weighted(&[22, 18, 12, 14, 8, 8, 6, 12]);
        let h = match shape {
            0 => self.palo_alto(ts),
            1 => self.fortigate(ts),
            2 => self.check_point(ts),
            3 => self.web_proxy(ts),
            4 => self.pam_vault(),
            5 => self.edr(),
            6 => self.waf(ts),
            _ => self.escapes(ts),
        };
        // The generic shape writes its header fields pre-escaped.
        let (vendor, product, name) = if shape == 7 {
            (h.vendor, h.product, h.name)
        } else {
            (hdr_esc(&h.vendor), hdr_esc(&h.product), hdr_esc(&h.name))
        };
        let cef = format!(
            "CEF:0|{vendor}|{product}|{}|{}|{name}|{}|{}",
            h.version, h.signature, h.severity, h.ext
        );
        let pri = self.pick(&[16 * 8 + 6, 16 * 8 + 4, 20 * 8 + 5, 4 * 8 + 6, 8 + 5]);
        let host = h.host;
        if self.rng.chance(0.15) {
            let sd = if self.rng.chance(0.7) {
                "-".to_owned()
            } else {
                format!("[origin ip=\"{}\" software=\"relay\"]", self.private_ip())
            };
            let procid = if self.rng.chance(0.5) {
                "-".to_owned()
            } else {
                self.n(100, 65_000).to_string()
            };
            format!(
                "<{pri}>1 {} {host}.contoso.com CEF {procid} - {sd} {cef}",
                ts3339(ts)
            )
        } else {
            format!("<{pri}>{} {host} {cef}", ts3164(ts / 1000))
        }
    }

    fn palo_alto(&mut self, ts: u64) -> Header {
        let rt = format!("{} 2024 UTC", ts3164(ts / 1000));
        let serial = self.n(0, 99);
        let (src, dst, nat_src, nat_dst) = (
            self.private_ip(),
            self.public_ip(),
            self.public_ip(),
            self.private_ip(),
        );
        let rule = self.pick(&["Outbound web", "Block Tor exits", "Default deny", "DNS out"]);
        let suser = if self.rng.chance(0.5) {
            format!("contoso\\\\{}", self.pick(GIVEN))
        } else {
            String::new()
        };
        let app = self.pick(&["ssl", "web-browsing", "dns", "ms-office365", "incomplete"]);
        let session = self.n(1, 10_000_000);
        let spt = self.n(1024, 65_535);
        let dpt = self.pick(&[443u32, 80, 53, 22, 3389, 8443]);
        let proto = self.pick(&["tcp", "udp", "icmp"]);
        let act = self.pick(&["allow", "deny", "drop", "reset-both"]);
        let (bytes_in, bytes_out) = (self.n(40, 1_000_000), self.n(40, 10_000_000));
        let ext = format!(
            "rt={rt} deviceExternalId=0071019{serial:02} src={src} dst={dst} \
             sourceTranslatedAddress={nat_src} destinationTranslatedAddress={nat_dst} \
             cs1Label=Rule cs1={rule} suser={suser} duser= app={app} \
             cs3Label=Virtual System cs3=vsys1 cs4Label=Source Zone cs4=trust \
             cs5Label=Destination Zone cs5=untrust deviceInboundInterface=ethernet1/2 \
             deviceOutboundInterface=ethernet1/1 cn1Label=SessionID cn1={session} \
             spt={spt} dpt={dpt} proto={proto} act={act} in={bytes_in} out={bytes_out}"
        );
        let severity = self.pick(&["1", "3"]);
        Header::new("Palo Alto Networks", "PAN-OS", "11.0.2", "TRAFFIC", "end")
            .with(severity, ext, "pa-fw01")
    }

    fn fortigate(&mut self, ts: u64) -> Header {
        let act = self.pick(&["accept", "deny", "close", "timeout"]);
        let src = self.private_ip();
        let shost = self.pick(&["WKS-0042", "laptop-finance", "meeting room 2"]);
        let spt = self.n(1024, 65_535);
        let dst = self.public_ip();
        let dpt = self.pick(&[443u32, 80, 53, 123, 25]);
        let proto = self.pick(&[6u32, 17, 1]);
        let port = self.n(1, 9);
        let policy = self.n(1, 120);
        let (sent, rcvd) = (self.n(0, 1_000_000), self.n(0, 10_000_000));
        let msg = self.pick(&[
            "Connection closed by client",
            "Session timed out",
            "Denied by forward policy check (policy 0)",
        ]);
        let ext = format!(
            "start={ts} src={src} shost={shost} spt={spt} dst={dst} dpt={dpt} proto={proto} \
             act={act} deviceInboundInterface=port{port} deviceOutboundInterface=wan1 \
             FTNTFGTlogid=0000000013 cat=traffic:forward FTNTFGTsubtype=forward \
             FTNTFGTlevel=notice FTNTFGTvd=root FTNTFGTpolicyid={policy} \
             FTNTFGTpolicytype=policy FTNTFGTsentbyte={sent} FTNTFGTrcvdbyte={rcvd} msg={msg}"
        );
        let name = format!("traffic:forward {act}");
        Header::new("Fortinet", "Fortigate", "v7.4.1", "0000000013", &name)
            .with("3", ext, "fgt-edge")
    }

    fn check_point(&mut self, ts: u64) -> Header {
        let act = self.pick(&["Accept", "Drop", "Reject"]);
        let dir = self.n(0, 1);
        let spt = self.n(1024, 65_535);
        let dpt = self.pick(&[443u32, 445, 53, 389]);
        let (src, dst) = (self.private_ip(), self.public_ip());
        let proto = self.pick(&["6", "17"]);
        let rule = self.pick(&["Cleanup rule", "Internet access", "AD to DCs"]);
        let layer = self.uuid();
        let match_id = self.n(1, 200);
        let rule_action = self.pick(&["Accept", "Drop"]);
        let rule_uid = self.uuid();
        let ifname = self.n(0, 3);
        let loguid: Vec<String> = (0..4)
            .map(|_| format!("0x{:x}", self.rng.bits(28)))
            .collect();
        let origin = self.private_ip();
        let seq = self.n(1, 9999);
        let ext = format!(
            "act={act} deviceDirection={dir} rt={ts} spt={spt} dpt={dpt} src={src} dst={dst} \
             proto={proto} cs2Label=Rule Name cs2={rule} cs3Label=Product cs3=VPN-1 & FireWall-1 \
             layer_name=Network layer_uuid={layer} match_id={match_id} parent_rule=0 \
             rule_action={rule_action} rule_uid={rule_uid} ifname=eth{ifname} logid=0 \
             loguid={{{}}} origin={origin} originsicname=CN\\=gw-01,O\\=mgmt..x7k2p9 \
             sequencenum={seq} version=5",
            loguid.join(",")
        );
        Header::new(
            "Check Point",
            "VPN-1 & FireWall-1",
            "Check Point",
            "Log",
            "Drop",
        )
        .with("5", ext, "cp-gw01")
    }

    fn web_proxy(&mut self, _ts: u64) -> Header {
        let act = self.pick(&["Allowed", "Blocked"]);
        let reason = self.pick(&["Allowed", "Not allowed to browse this category"]);
        let host = self.pick(&[
            "www.example.com",
            "login.microsoftonline.com",
            "files.example.net",
            "cdn.example.org",
        ]);
        let path = self.pick(&[
            "/",
            "/index.html",
            "/search?q\\=cef+parser&hl\\=en",
            "/api/v2/items?id\\=42",
        ]);
        let (dst, src, nat) = (self.public_ip(), self.private_ip(), self.public_ip());
        let (bytes_in, bytes_out) = (self.n(100, 1_000_000), self.n(100, 100_000));
        let method = self.pick(&["GET", "POST", "CONNECT"]);
        let cat = self.pick(&["Web Search", "Professional Services", "Corporate Marketing"]);
        let agent = ext_esc(self.pick(&AGENTS[..4]));
        let outcome = self.pick(&[200u32, 204, 302, 403]);
        let suser = self.user();
        let location = self.pick(&["Road Warrior", "HQ"]);
        let dept = self.pick(&["Finance", "IT Ops", "R&D"]);
        let urlcat = self.pick(&["Web Search", "Other Information Technology"]);
        let risk = self.n(0, 100);
        let ext = format!(
            "act={act} reason={reason} app=HTTP_PROXY dhost={host} dst={dst} src={src} \
             sourceTranslatedAddress={nat} in={bytes_in} out={bytes_out} \
             request=https://{host}{path} requestContext=None requestMethod={method} cat={cat} \
             requestClientApplication={agent} outcome={outcome} suser={suser} spriv={location} \
             cs1Label=dept cs1={dept} cs2Label=urlcat cs2={urlcat} cn1Label=riskscore cn1={risk}"
        );
        Header::new("Zscaler", "NSSWeblog", "6.1", act, act).with("3", ext, "zscaler-nss")
    }

    fn pam_vault(&mut self) -> Header {
        let severity = self.pick(&["5", "7"]);
        let act = self.pick(&["Retrieve password", "CPM Verify Password", "Logon"]);
        let who = self.pick(&["PasswordManager", "Administrator", "svc_backup"]);
        let domain = self.pick(&["contoso.com", "fabrikam.local"]);
        let account = self.pick(GIVEN);
        let (shost, dhost) = (self.private_ip(), self.private_ip());
        let duser = self.pick(GIVEN);
        let reason = self.pick(&["", "Ticket INC0098765 approved", "break-glass"]);
        let safe = self.pick(&["Windows Domain Admins", "Linux Root", "DB-Prod"]);
        let other = self.private_ip();
        let ticket = self.n(1000, 99_999);
        let msg = self.pick(&[
            "Password retrieved",
            "Verify password succeeded",
            "The user has logged on",
        ]);
        let ext = format!(
            "act={act} suser={who} fname=Root\\\\Operating System-WinDomain-{domain}-{account} \
             dvc= shost={shost} dhost={dhost} duser={duser} externalId= app= reason={reason} \
             cs1Label=Affected User Name cs1= cs2Label=Safe Name cs2={safe} \
             cs3Label=Device Type cs3=Operating System cs4Label=Database cs4= \
             cs5Label=Other info cs5={other} cn1Label=Request Id cn1= cn2Label=Ticket Id \
             cn2={ticket} msg={msg}"
        );
        let signature = self.pick(&["295", "22", "7"]);
        Header::new(
            "Cyber-Ark",
            "Vault",
            "14.0.0000",
            signature,
            "Retrieve password",
        )
        .with(severity, ext, "vault01")
    }

    fn edr(&mut self) -> Header {
        let host_id = self.n(1, 999);
        let dvchost = if self.rng.chance(0.5) {
            format!("WS-{:04}", self.n(1, 9999))
        } else {
            "srv-app-01".to_owned()
        };
        let user = self.pick(GIVEN);
        let file = self.pick(&["invoice.exe", "setup (1).msi", "eicar.com"]);
        let act = self.pick(&["Delete", "Quarantine", "Pass"]);
        let size = self.n(68, 1_000_000);
        let (h1, h2, h3) = (self.rng.bits(32), self.rng.bits(64), self.rng.bits(64));
        let ext = format!(
            "cn1={host_id} cn1Label=Host ID dvchost={dvchost} TrendMicroDsTenant=Primary \
             TrendMicroDsTenantId=0 filePath=C:\\\\Users\\\\{user}\\\\Downloads\\\\{file} \
             act={act} msg=Realtime result=Delete cs3Label=Quarantine File Size cs3={size} \
             cs6Label=Scan Type cs6=Real Time fileHash={h1:08x}{h2:016x}{h3:016x}"
        );
        Header::new(
            "Trend Micro",
            "Deep Security Agent",
            "20.0.1021",
            "4000000",
            "Eicar_test_file",
        )
        .with("6", ext, "dsm")
    }

    fn waf(&mut self, ts: u64) -> Header {
        let file_id = self.rng.bits(40);
        let service = self.pick(&["www.example.com", "shop.example.com"]);
        let (site, suid) = (self.n(1, 4_782_969), self.n(1, 4_782_969));
        let agent = ext_esc(self.pick(&AGENTS[..4]));
        let pop = self.pick(&["fra", "ams", "iad"]);
        let js = self.pick(&["true", "false"]);
        let (src, ca, xff) = (self.public_ip(), self.public_ip(), self.public_ip());
        let country = self.pick(&["DE", "NL", "US", "JP"]);
        let code = self.pick(&[200u32, 301, 404]);
        let bytes_in = self.n(100, 9000);
        let cap = self.pick(&["NOT_SUPPORTED", "SUPPORTED"]);
        let vid = self.uuid();
        let client = self.pick(&["Chrome", "Firefox"]);
        let city = self.pick(&["Frankfurt am Main", "Amsterdam", "Ashburn"]);
        let lat = self.rng.unit() * 120.0 - 60.0;
        let lon = self.rng.unit() * 240.0 - 120.0;
        let page = self.pick(&["cart", "login", "search"]);
        let method = self.pick(&["GET", "POST"]);
        let qstr = self.pick(&["", "q\\=boots&page\\=2", "next\\=%2Faccount"]);
        let response = self.pick(&[200u32, 302]);
        let ext = format!(
            "fileId={file_id} sourceServiceName={service} siteid={site} suid={suid} \
             requestClientApplication={agent} deviceFacility={pop} cs2={js} \
             cs2Label=Javascript Support cs3=true cs3Label=CO Support src={src} caIP={ca} \
             ccode={country} tag=www.example.com cn1={code} in={bytes_in} xff={xff} cs1={cap} \
             cs1Label=Cap Support cs4={vid} cs4Label=VID dproc=Browser cs6={client} \
             cs6Label=clapp cicode={city} cs7={lat:.4} cs7Label=latitude cs8={lon:.4} \
             cs8Label=longitude ver=TLSv1.3 TLS_AES_128_GCM_SHA256 start={ts} \
             request=www.example.com/{page} requestMethod={method} qstr={qstr} \
             cn2Label=Response Code cn2={response} proto=HTTPS cat=REQ_PASSED"
        );
        Header::new("Incapsula", "SIEMintegration", "1", "1", "Normal").with("0", ext, "imperva")
    }

    /// Header fields already escaped (`\|`, `\\`), and `\=`, `\\`, `\n` in
    /// extension values.
    fn escapes(&mut self, ts: u64) -> Header {
        let vendor = self.pick(&["Sentinel\\|Labs", "Blue\\\\Team", "Sentinel"]);
        let product = self.pick(&["intrusion\\|guard", "Intrusion\\\\Guard", "intrusionguard"]);
        let name = self.pick(&[
            "pipe \\| seen in payload",
            "worm successfully stopped",
            "backslash \\\\ seen in payload",
            "Sign-in from an unfamiliar location",
        ]);
        let (src, dst) = (self.private_ip(), self.public_ip());
        let spt = self.n(1024, 65_535);
        let dpt = self.pick(&[80u32, 443, 445]);
        let act = self.pick(&["blocked", "allowed", "quarantined"]);
        let msg = self.pick(&[
            "Threat detected.\\nNo action required",
            "Message with an \\= sign inside it",
            "Loaded from C:\\\\Windows\\\\Temp",
        ]);
        let path = self.pick(&[
            "C:\\\\Program Files\\\\Agent\\\\agent.exe",
            "/opt/agent/bin/run me",
        ]);
        let suser = self.user();
        let cn = self.pick(GIVEN);
        let seen = format!("{} 2024", ts3164(ts / 1000));
        let signature = self.pick(&["100", "200", "300"]);
        let severity = self.n(1, 10).to_string();
        let ext = format!(
            "src={src} dst={dst} spt={spt} dpt={dpt} proto=TCP act={act} msg={msg} \
             cs1Label=Path cs1={path} suser={suser} duser=CN\\={cn},OU\\=Staff,DC\\=contoso,DC\\=com \
             request=http://example.com/p?x\\=1&y\\=2 deviceCustomDate1={seen} \
             deviceCustomDate1Label=Last Seen"
        );
        Header::new(vendor, product, "1.0", signature, name).with(&severity, ext, "sec-appliance")
    }
}

/// The parts of one mixed line before framing.
struct Header {
    vendor: String,
    product: String,
    version: String,
    signature: String,
    name: String,
    severity: String,
    ext: String,
    host: String,
}

impl Header {
    fn new(vendor: &str, product: &str, version: &str, signature: &str, name: &str) -> Self {
        Self {
            vendor: vendor.to_owned(),
            product: product.to_owned(),
            version: version.to_owned(),
            signature: signature.to_owned(),
            name: name.to_owned(),
            severity: String::new(),
            ext: String::new(),
            host: String::new(),
        }
    }

    fn with(mut self, severity: &str, ext: String, host: &str) -> Self {
        self.severity = severity.to_owned();
        self.ext = ext;
        self.host = host.to_owned();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(buf: &[u8]) -> Vec<&str> {
        lines(buf)
            .map(|l| std::str::from_utf8(l).expect("corpus is UTF-8"))
            .collect()
    }

    fn is_5424(line: &str) -> bool {
        // `<PRI>1 ` then an RFC 3339 timestamp; RFC 3164 has a month name there.
        line.split_once('>')
            .is_some_and(|(_, rest)| rest.starts_with("1 2024-"))
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        assert_eq!(mcas(500, 7), mcas(500, 7));
        assert_eq!(mixed(500, 7), mixed(500, 7));
        assert_ne!(mcas(500, 7), mcas(500, 8));
        assert_ne!(mixed(500, 7), mixed(500, 8));
        // A shorter corpus is a prefix of a longer one with the same seed.
        let long = mcas(300, 7);
        let short = mcas(100, 7);
        assert!(long.starts_with(&short));
    }

    #[test]
    fn splitmix_matches_its_reference_sequence() {
        // First outputs of SplitMix64 seeded with 1234567, from the reference
        // definition (Vigna's splitmix64.c).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn civil_time_is_right() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(1_732_776_284), (2024, 11, 28, 6, 44, 44));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(ts3164(1_733_011_200), "Dec  1 00:00:00");
        assert_eq!(ts3339(1_732_776_284_007), "2024-11-28T06:44:44.007Z");
    }

    #[test]
    fn mcas_shape() {
        let buf = mcas(2000, DEFAULT_SEED);
        assert_eq!(buf.last(), Some(&b'\n'));
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 2000);
        let all = text(&buf);
        assert_eq!(all.len(), 2000);
        for l in &all {
            assert!(l.starts_with("<134>") || l.starts_with("<132>"), "{l}");
            assert!(l.contains(" CEF:0|MCAS|SIEM_Agent|0."), "{l}");
            assert!(l.contains("externalId="), "{l}");
            assert!(!l.contains('\r'));
            // Header: 7 unescaped pipes before the extension.
            let cef = &l[l.find("CEF:0|").expect("CEF")..];
            assert!(cef.matches('|').count() >= 7, "{l}");
        }
        let alerts = all
            .iter()
            .filter(|l| l.contains("|ALERT_") || l.contains("|MCAS_ALERT_"))
            .count();
        let escaped_cs1 = all
            .iter()
            .filter(|l| l.contains("audits?activity.id\\=eq("))
            .count();
        assert!((100..=320).contains(&alerts), "alerts {alerts}");
        assert_eq!(
            alerts + escaped_cs1,
            all.len(),
            "every activity carries \\= in cs1"
        );
        assert!(escaped_cs1 * 100 / all.len() >= 80);
        assert!(all.iter().all(|l| !is_5424(l)));
        let avg = buf.len() / all.len();
        assert!((400..=900).contains(&avg), "average line {avg} bytes");
    }

    #[test]
    fn mixed_shape() {
        let buf = mixed(4000, DEFAULT_SEED);
        let all = text(&buf);
        assert_eq!(all.len(), 4000);
        assert!(
            all.iter()
                .all(|l| l.contains("CEF:0|") && l.starts_with('<'))
        );
        let rfc5424 = all.iter().filter(|l| is_5424(l)).count();
        let share = rfc5424 as f64 / all.len() as f64;
        assert!((0.12..=0.18).contains(&share), "RFC 5424 share {share}");
        for vendor in [
            "|Palo Alto Networks|PAN-OS|",
            "|Fortinet|Fortigate|",
            "|Check Point|",
            "|Zscaler|NSSWeblog|",
            "|Cyber-Ark|Vault|",
            "|Trend Micro|Deep Security Agent|",
            "|Incapsula|SIEMintegration|",
        ] {
            let n = all.iter().filter(|l| l.contains(vendor)).count();
            assert!(n >= 100, "{vendor}: {n}");
        }
        let header_escapes = all.iter().filter(|l| l.contains("\\|")).count();
        let newline_escapes = all.iter().filter(|l| l.contains("\\n")).count();
        let eq_escapes = all.iter().filter(|l| l.contains("\\=")).count();
        assert!(header_escapes >= 50, "{header_escapes}");
        assert!(newline_escapes >= 20, "{newline_escapes}");
        assert!(eq_escapes >= 400, "{eq_escapes}");
    }

    #[test]
    fn lines_helper_splits_without_terminators() {
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"a\nb\n").collect::<Vec<_>>(), vec![&b"a"[..], b"b"]);
        assert_eq!(
            lines(b"a\n\nb").collect::<Vec<_>>(),
            vec![&b"a"[..], b"", b"b"]
        );
    }
}
