//! Sends a corpus to a syslog listener on loopback and measures delivery.
//!
//! ```text
//! loadgen --target 127.0.0.1:5140 [--proto tcp|udp|relp] [--framing lf|octet] [--window N]
//!         [--connections N] [--rate EPS] [--count N] [--file PATH | --corpus mcas|mixed]
//!         [--lines N] [--seed S] [--wait-file PATH | --wait-http ADDR/PATH]
//!         [--wait-field NAME] [--expect N] [--timeout SECS] [--idle SECS]
//!         [--label TEXT]
//! ```
//!
//! It prints one JSON line: what was sent, what was delivered, and events/s
//! from the first byte sent to the last row seen delivered (the line count of
//! `--wait-file`, or the count read from `--wait-http`); waiting ends at
//! `--timeout`, or when the count has not moved for `--idle` seconds. Without a wait
//! option it measures the send alone. UDP is paced (`--rate`, default 100000
//! messages/s) so the figure is not about kernel drops; the report says what
//! was sent. TCP is sent as fast as the receiver reads unless `--rate` is given: then
//! each connection writes its share of the rate in slices of 1 ms worth of messages
//! (a steady load, for soak runs). `--count N` sends N messages in all (TCP and UDP),
//! going through the corpus again from its first line as often as needed, so a long
//! run needs no larger corpus; each connection cycles through its own part of it.
//! RELP (`--proto relp`) keeps `--window` messages (default 1024) unanswered
//! per connection and ends each session only once every message is answered.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mcas_benches::corpus;
use mcas_benches::load::{self, Framing, LineCounter, SendReport};

#[derive(Debug)]
enum Wait {
    None,
    File(PathBuf),
    Http(SocketAddr, String),
}

#[derive(Debug)]
struct Args {
    target: SocketAddr,
    udp: bool,
    relp: bool,
    window: usize,
    framing: Framing,
    connections: usize,
    /// Messages per second, all connections together; `None`: UDP at 100000, TCP unpaced.
    rate: Option<u64>,
    /// Messages to send in all; `None`: the corpus once.
    count: Option<u64>,
    file: Option<PathBuf>,
    corpus: String,
    lines: usize,
    seed: u64,
    wait: Wait,
    field: Option<String>,
    expect: Option<u64>,
    timeout: Duration,
    idle: Duration,
    label: String,
}

fn parse() -> Result<Args, Box<dyn std::error::Error>> {
    let mut a = Args {
        target: "127.0.0.1:5140".parse()?,
        udp: false,
        relp: false,
        window: 1024,
        framing: Framing::Lf,
        connections: 1,
        rate: None,
        count: None,
        file: None,
        corpus: "mcas".into(),
        lines: corpus::DEFAULT_LINES,
        seed: corpus::DEFAULT_SEED,
        wait: Wait::None,
        field: None,
        expect: None,
        timeout: Duration::from_secs(300),
        idle: Duration::from_secs(10),
        label: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut v = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--target" => a.target = v()?.parse()?,
            "--proto" => {
                (a.udp, a.relp) = match v()?.as_str() {
                    "udp" => (true, false),
                    "tcp" => (false, false),
                    "relp" => (false, true),
                    other => return Err(format!("unknown protocol {other}").into()),
                }
            }
            "--window" => a.window = v()?.parse::<usize>()?.max(1),
            "--framing" => {
                a.framing = match v()?.as_str() {
                    "lf" => Framing::Lf,
                    "octet" => Framing::Octet,
                    other => return Err(format!("unknown framing {other}").into()),
                }
            }
            "--connections" => a.connections = v()?.parse::<usize>()?.max(1),
            "--rate" => a.rate = Some(v()?.parse()?),
            "--count" => a.count = Some(v()?.parse()?),
            "--file" => a.file = Some(v()?.into()),
            "--corpus" => a.corpus = v()?,
            "--lines" => a.lines = v()?.parse()?,
            "--seed" => a.seed = v()?.parse()?,
            "--wait-file" => a.wait = Wait::File(v()?.into()),
            "--wait-http" => {
                let s = v()?;
                let (host, path) = s.split_at(s.find('/').unwrap_or(s.len()));
                let path = if path.is_empty() { "/" } else { path };
                a.wait = Wait::Http(host.parse()?, path.to_owned());
            }
            "--wait-field" => a.field = Some(v()?),
            "--expect" => a.expect = Some(v()?.parse()?),
            "--timeout" => a.timeout = Duration::from_secs_f64(v()?.parse()?),
            "--idle" => a.idle = Duration::from_secs_f64(v()?.parse()?),
            "--label" => a.label = v()?,
            "-h" | "--help" => {
                println!("see the module documentation of loadgen.rs");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    load::require_loopback(a.target)?;
    if a.relp && (a.rate.is_some() || a.count.is_some()) {
        return Err("--rate and --count are for tcp and udp".into());
    }
    Ok(a)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, Box<dyn std::error::Error>> {
    let a = parse()?;
    let buf = match &a.file {
        Some(p) => std::fs::read(p)?,
        None if a.corpus == "mixed" => corpus::mixed(a.lines, a.seed),
        None => corpus::mcas(a.lines, a.seed),
    };
    let lines: Vec<&[u8]> = corpus::lines(&buf).collect();
    let parts = load::split(&lines, a.connections);

    let mut counter = match &a.wait {
        Wait::File(p) => Some(LineCounter::new(p)),
        _ => None,
    };
    let field = a.field.clone();
    let mut count = || -> std::io::Result<u64> {
        match (&a.wait, counter.as_mut()) {
            (Wait::File(_), Some(c)) => c.poll(),
            (Wait::Http(addr, path), _) => load::http_count(*addr, path, field.as_deref()),
            _ => Ok(0),
        }
    };
    let baseline = match a.wait {
        Wait::None => 0,
        _ => count()?,
    };

    // Paced or repeated TCP is framed as it goes; otherwise frame before the clock starts:
    // the figure is about the receiver.
    let cycle = !a.udp && !a.relp && (a.rate.is_some() || a.count.is_some());
    let framed: Vec<Vec<u8>> = if a.udp || a.relp || cycle {
        Vec::new()
    } else {
        parts.iter().map(|p| load::frame(p, a.framing)).collect()
    };
    let n = parts.len();
    let total_rate = a.rate.unwrap_or(if a.udp { 100_000 } else { 0 });
    let start = Instant::now();
    let reports: Vec<std::io::Result<SendReport>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let framed = &framed;
                let (udp, relp, target, framing) = (a.udp, a.relp, a.target, a.framing);
                // A connection's share of the rate, never 0 (unpaced) when a rate is set.
                let rate = match load::share(total_rate, n, i) {
                    0 if total_rate > 0 => 1,
                    r => r,
                };
                let count = a.count.map_or(part.len() as u64, |c| load::share(c, n, i));
                let window = a.window;
                s.spawn(move || {
                    if relp {
                        load::send_relp(target, part, window)
                    } else if udp {
                        load::send_udp_cycle(target, part, count, rate)
                    } else if cycle {
                        load::send_tcp_cycle(target, part, framing, count, rate, Duration::ZERO)
                    } else {
                        load::send_tcp(target, &framed[i], part.len() as u64, Duration::ZERO)
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("sender panicked")))
            })
            .collect()
    });
    let send_s = start.elapsed().as_secs_f64();
    let mut total = SendReport::default();
    for r in reports {
        let r = r?;
        total.messages += r.messages;
        total.bytes += r.bytes;
        total.skipped += r.skipped;
    }
    let expect = a.expect.unwrap_or(total.messages);
    let (delivered, at) = match a.wait {
        Wait::None => (total.messages, start.elapsed()),
        _ => {
            let (n, at) = load::wait_for(
                || count().map(|n| n.saturating_sub(baseline)),
                expect,
                start,
                load::WaitLimits {
                    timeout: a.timeout,
                    idle: a.idle,
                    interval: Duration::from_millis(5),
                },
            );
            (n, at)
        }
    };
    let elapsed = at.as_secs_f64().max(1e-9);
    let complete = delivered >= expect;
    println!(
        "{{\"label\":\"{}\",\"proto\":\"{}\",\"framing\":\"{}\",\"connections\":{},\"rate\":{},\"sent\":{},\"skipped\":{},\"bytes\":{},\"send_s\":{:.3},\"expected\":{},\"delivered\":{},\"elapsed_s\":{:.3},\"eps\":{:.0},\"complete\":{}}}",
        a.label.replace(['"', '\\'], "_"),
        if a.udp {
            "udp"
        } else if a.relp {
            "relp"
        } else {
            "tcp"
        },
        match (a.udp, a.framing) {
            _ if a.relp => "relp",
            (true, _) => "datagram",
            (false, Framing::Lf) => "lf",
            (false, Framing::Octet) => "octet",
        },
        parts.len(),
        if total_rate == 0 {
            "null".to_owned()
        } else {
            total_rate.to_string()
        },
        total.messages,
        total.skipped,
        total.bytes,
        send_s,
        expect,
        delivered,
        elapsed,
        delivered as f64 / elapsed,
        complete
    );
    Ok(complete)
}
