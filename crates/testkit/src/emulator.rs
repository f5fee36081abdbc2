//! The in-process `mcas-azure-emulator` as the tests set it up, what it holds, and the
//! forwarder configuration that sends to it.

use std::collections::HashMap;
use std::io::{self, BufRead as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcas_azure_emulator::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_CSL_STREAM, DEFAULT_DCR_ID,
    DEFAULT_TENANT_ID, Emulator, EmulatorConfig, EmulatorHandle, Faults, Storage,
};
use serde_json::Value;

/// The table the CEF rows land in.
pub const CSL: &str = "CommonSecurityLog";

/// The variable the forwarder reads its client secret from.
pub const CLIENT_SECRET_ENV: &str = "MCAS_FORWARD_CLIENT_SECRET";

/// The environment that gives the forwarder the emulator's client secret.
pub fn secret_env() -> [(&'static str, &'static str); 1] {
    [(CLIENT_SECRET_ENV, DEFAULT_CLIENT_SECRET)]
}

/// A logs-ingestion output table into the emulator at `base`, with the emulator's DCR,
/// stream, tenant and client. `header` is `[output]` or `[[output]]`; `output_keys` and
/// `auth_keys` are more `key = value` lines for the output and its `auth` table. The
/// secret comes from [`secret_env`] unless `auth_keys` names another source.
pub fn logs_ingestion_output(
    header: &str,
    base: &str,
    output_keys: &str,
    auth_keys: &str,
) -> String {
    format!(
        "\n{header}\n\
         kind = \"logs-ingestion\"\n\
         endpoint = \"{base}\"\n\
         dcr_immutable_id = \"{DEFAULT_DCR_ID}\"\n\
         stream = \"{DEFAULT_CSL_STREAM}\"\n\
         {output_keys}\n\
         \n[output.auth]\n\
         kind = \"client-secret\"\n\
         tenant_id = \"{DEFAULT_TENANT_ID}\"\n\
         client_id = \"{DEFAULT_CLIENT_ID}\"\n\
         authority_host = \"{base}\"\n\
         {auth_keys}\n"
    )
}

/// How to start an emulator: the default configuration (tenant, client, secret, the
/// built-in DCR, rows in memory) with the changes the tests make.
#[derive(Debug, Clone, Default)]
pub struct EmulatorSetup {
    config: EmulatorConfig,
    data_dir: Option<PathBuf>,
}

impl EmulatorSetup {
    /// The default set-up.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep rows in `dir/<Table>.jsonl` rather than in memory (created at start).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// The lifetime of the tokens it issues.
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.config.token_lifetime = lifetime;
        self
    }

    /// Any other change to the configuration (a DCR with a transformation, limits, faults
    /// from the start).
    pub fn configure(mut self, change: impl FnOnce(&mut EmulatorConfig)) -> Self {
        change(&mut self.config);
        self
    }

    fn prepare(self) -> io::Result<(EmulatorConfig, Option<PathBuf>)> {
        let mut config = self.config;
        if let Some(d) = &self.data_dir {
            std::fs::create_dir_all(d)?;
            config.storage = Storage::Dir(d.clone());
        }
        Ok((config, self.data_dir))
    }

    /// Starts it on the current tokio runtime (an async test's).
    pub async fn start(self) -> io::Result<EmulatorHandle> {
        let (config, _) = self.prepare()?;
        Emulator::start(config).await.map_err(io::Error::other)
    }

    /// Starts it on a runtime of its own (two worker threads), for code that is not async.
    pub fn start_owned(self) -> io::Result<OwnedEmulator> {
        let (config, data_dir) = self.prepare()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let handle = rt
            .block_on(Emulator::start(config))
            .map_err(io::Error::other)?;
        Ok(OwnedEmulator {
            rt: Some(rt),
            handle: Some(handle),
            data_dir,
        })
    }
}

/// An emulator on its own runtime. Stopped on drop; not to be dropped inside an async
/// context (use [`EmulatorSetup::start`] there).
#[derive(Debug)]
pub struct OwnedEmulator {
    rt: Option<tokio::runtime::Runtime>,
    handle: Option<EmulatorHandle>,
    data_dir: Option<PathBuf>,
}

impl OwnedEmulator {
    /// The running emulator.
    ///
    /// # Panics
    ///
    /// Never: the handle is only taken by [`OwnedEmulator::stop`], which consumes `self`.
    pub fn handle(&self) -> &EmulatorHandle {
        self.handle
            .as_ref()
            .expect("the handle lives until stop or drop")
    }

    /// `http://127.0.0.1:PORT`: the authority host and ingestion endpoint.
    pub fn base_url(&self) -> String {
        self.handle().base_url()
    }

    /// The rows `table` holds.
    pub fn count(&self, table: &str) -> u64 {
        self.handle().count(table) as u64
    }

    /// Replaces the faults. Down windows are timed by a task on the emulator's runtime,
    /// which this enters.
    pub fn set_faults(&self, faults: Faults) {
        let _guard = self.rt.as_ref().map(tokio::runtime::Runtime::enter);
        self.handle().set_faults(faults);
    }

    /// The emulator's own counters, as JSON.
    pub fn metrics_json(&self) -> String {
        serde_json::to_string(&self.handle().metrics()).unwrap_or_default()
    }

    /// The rows `table` holds: from its file with a data directory, from memory otherwise.
    pub fn rows(&self, table: &str) -> io::Result<Vec<Value>> {
        match &self.data_dir {
            Some(d) => stored_rows(d, table),
            None => Ok(self.handle().rows(table)),
        }
    }

    /// Stops the server and its runtime.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let (Some(h), Some(rt)) = (self.handle.take(), self.rt.as_ref()) {
            rt.block_on(h.shutdown());
        }
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for OwnedEmulator {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The rows of `table` in an emulator data directory (`dir/<table>.jsonl`, which must
/// exist).
pub fn stored_rows(dir: &Path, table: &str) -> io::Result<Vec<Value>> {
    let path = dir.join(format!("{table}.jsonl"));
    let f = std::fs::File::open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let mut rows = Vec::new();
    for (i, line) in io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let row = serde_json::from_str(&line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{table}.jsonl line {}: {e}", i + 1),
            )
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Each `ExtID` among `rows` with the number of rows that carry it.
pub fn ext_ids<'a>(rows: impl IntoIterator<Item = &'a Value>) -> HashMap<String, u32> {
    let mut ids = HashMap::new();
    for id in rows
        .into_iter()
        .filter_map(|r| r.get("ExtID").and_then(Value::as_str))
    {
        *ids.entry(id.to_owned()).or_insert(0) += 1;
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_table_names_the_emulator_identity() {
        let t = logs_ingestion_output(
            "[[output]]",
            "http://127.0.0.1:1",
            "name = \"a\"",
            "client_secret_file = \"s\"",
        );
        let has = |line: &str| assert!(t.lines().any(|l| l == line), "{line} in\n{t}");
        has("[[output]]");
        has("name = \"a\"");
        has(&format!("dcr_immutable_id = \"{DEFAULT_DCR_ID}\""));
        has("authority_host = \"http://127.0.0.1:1\"");
        has("client_secret_file = \"s\"");
    }

    #[test]
    fn an_owned_emulator_stores_rows_in_its_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let emu = EmulatorSetup::new()
            .data_dir(dir.path().join("emu"))
            .token_lifetime(Duration::from_secs(60))
            .start_owned()
            .expect("start");
        assert!(emu.base_url().starts_with("http://127.0.0.1:"));
        assert_eq!(emu.count(CSL), 0);
        emu.set_faults(Faults::none());
        assert!(emu.metrics_json().starts_with('{'));
        std::fs::write(
            dir.path().join("emu").join(format!("{CSL}.jsonl")),
            "{\"ExtID\":\"a\"}\n\n{\"ExtID\":\"a\"}\n{\"ExtID\":\"b\"}\n",
        )
        .expect("write");
        let rows = emu.rows(CSL).expect("rows");
        let ids = ext_ids(&rows);
        assert_eq!((ids["a"], ids["b"], ids.len()), (2, 1, 2));
        emu.stop();
    }
}
