//! `cohort deid`: de-identify a folder of DICOM files (progress bar, one
//! report line per file), and benchmark the de-identifier.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use deid::{DeidKey, Deidentifier, FileReport, Options, ProfileOption};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// De-identification commands.
#[derive(Debug, Subcommand)]
pub enum DeidCommand {
    /// De-identify every DICOM file under IN_DIR into OUT_DIR (same relative
    /// paths), with a JSON-lines report of what was done to each file.
    Dicom(DicomArgs),
    /// Measure CPU time per file on a set of DICOM files replicated to about N files.
    Bench(BenchArgs),
    /// De-identify clinical notes (JSON lines); `text eval` scores a gold set.
    Text(crate::deid_text_cmd::TextArgs),
}

/// Which profile to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// Basic Profile + Modified Dates, Device Identity, Patient
    /// Characteristics, Clean Descriptors, Clean Pixel Data.
    Training,
    /// The training profile without Clean Pixel Data.
    HeadersOnly,
    /// The Basic Profile alone (dates removed, no option).
    Basic,
}

impl Profile {
    fn options(self) -> Options {
        match self {
            Profile::Training => Options::training(),
            Profile::HeadersOnly => Options::training().without(ProfileOption::CleanPixelData),
            Profile::Basic => Options::basic(),
        }
    }
}

/// The hospital's secret.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// File holding the de-identification secret (at least 16 bytes).
    #[arg(long, env = "COHORT_DEID_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// The secret itself (prefer --key-file: command lines are visible to others).
    #[arg(long, env = "COHORT_DEID_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

impl KeyArgs {
    pub fn load(&self) -> anyhow::Result<DeidKey> {
        let secret = match (&self.key_file, &self.key) {
            (Some(path), _) => std::fs::read(path)
                .with_context(|| format!("cannot read key file {}", path.display()))?,
            (None, Some(key)) => key.as_bytes().to_vec(),
            (None, None) => {
                bail!("no de-identification key: pass --key-file or set COHORT_DEID_KEY_FILE")
            }
        };
        Ok(DeidKey::new(&secret)?)
    }
}

/// Arguments of `cohort deid dicom`.
#[derive(Debug, Args)]
pub struct DicomArgs {
    /// Folder of DICOM files (searched recursively).
    pub input: PathBuf,
    /// Folder for the de-identified files (created if missing).
    pub output: PathBuf,
    /// Profile and options.
    #[arg(long, value_enum, default_value_t = Profile::Training)]
    pub profile: Profile,
    /// Report file (JSON lines); default OUT_DIR/deid-report.jsonl.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Decoded pixels each worker holds at once while cleaning, in MiB: a larger image is
    /// cleaned in runs of frames (slower, not bigger).
    #[arg(long, default_value_t = deid::pixel::DEFAULT_PIXEL_MEMORY >> 20)]
    pub pixel_memory_mib: usize,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// Arguments of `cohort deid bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Folder of DICOM files to replicate.
    pub input: PathBuf,
    /// Number of files to reach by replicating the set.
    #[arg(long, default_value_t = 200)]
    pub files: usize,
    /// Working folder (the replicated inputs go to WORK/in, outputs to WORK/out-*).
    #[arg(long)]
    pub work: PathBuf,
    /// Measure the headers-only runs alone (pixel cleaning takes minutes).
    #[arg(long)]
    pub headers_only: bool,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// The outcome for one file, as written to the report.
#[derive(Debug, Serialize)]
pub struct FileOutcome {
    /// Input path, relative to the input folder.
    pub file: String,
    /// `ok`, `skipped` (not DICOM) or `error`.
    pub status: &'static str,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was done.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<FileReport>,
}

/// Run a `cohort deid` command.
pub fn run(command: DeidCommand) -> anyhow::Result<()> {
    match command {
        DeidCommand::Dicom(args) => dicom(args),
        DeidCommand::Bench(args) => bench(args),
        DeidCommand::Text(args) => crate::deid_text_cmd::run(args),
    }
}

/// Every regular file under `dir`, sorted.
pub fn files_under(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)
            .with_context(|| format!("cannot list {}", folder.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            // the directory entry says what it is, without a stat (but a link is followed)
            let kind = entry.file_type()?;
            let (is_dir, is_file) = if kind.is_symlink() {
                (path.is_dir(), path.is_file())
            } else {
                (kind.is_dir(), kind.is_file())
            };
            if is_dir {
                pending.push(path);
            } else if is_file {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A temporary file that is removed when dropped (on an error, or while a
/// panic unwinds) unless it was renamed into place.
struct Temporary<'a> {
    path: &'a Path,
    renamed: bool,
}

impl Drop for Temporary<'_> {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

/// Write `path` whole or not at all: `fill` writes into a temporary file
/// beside it, which is renamed into place only if `fill` succeeds, and
/// removed otherwise, even if `fill` panics (not synced to disk: durability
/// across a crash is left to the file system).
pub fn write_atomically<T>(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> Result<T, String>,
) -> Result<T, String> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = parent.join(format!(".{name}.partial"));
    let created = std::fs::File::create(&temporary).or_else(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(parent).and_then(|()| std::fs::File::create(&temporary))
        }
        _ => Err(e),
    });
    let mut file = created.map_err(|e| format!("cannot write: {e}"))?;
    let mut guard = Temporary {
        path: &temporary,
        renamed: false,
    };
    let value = fill(&mut file)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|e| format!("cannot write: {e}"))?;
    guard.renamed = true;
    Ok(value)
}

/// Whether `bytes` start like a DICOM Part 10 file (`DICM` after the preamble).
fn looks_like_dicom(bytes: &[u8]) -> bool {
    bytes.get(128..132) == Some(b"DICM") || bytes.get(..4) == Some(b"DICM")
}

/// How much of each input is read first. The headers-only path needs the
/// elements before Pixel Data in memory and copies the rest file to file in
/// the kernel; when the header is longer, eight times more is read, and so
/// on up to the whole file.
const HEAD_BYTES: u64 = 64 * 1024;

/// An open input file, read at offsets for the de-identifier.
struct OpenInput<'a> {
    file: &'a std::fs::File,
    len: u64,
}

impl deid::ReadAt for OpenInput<'_> {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self.file, buf, offset)
    }
}

/// De-identify one file of the batch (nothing is left behind on error).
/// Files without the DICOM marker are skipped, not failed. A panic while
/// de-identifying (a bug, never the input's fault) fails this file alone.
/// `buffer` is reused between files.
///
/// Headers only, the pixel data is not read into memory: the new header is
/// written, then the input's Pixel Data element is copied into the output
/// by the kernel (`copy_file_range`). The bytes are those of
/// [`Deidentifier::deidentify`] on the whole file.
pub fn deidentify_file(
    deid: &Deidentifier,
    input: &Path,
    relative: &Path,
    output_dir: &Path,
    buffer: &mut Vec<u8>,
) -> FileOutcome {
    let file = relative.display().to_string();
    let output = output_dir.join(relative);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        deidentify_one(deid, input, &output, buffer)
    }))
    .unwrap_or_else(|panic| {
        // the buffer may hold half a file: start the next one afresh
        *buffer = Vec::new();
        let message = panic
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        Err(format!("internal error while de-identifying: {message}"))
    });
    let (status, error, report) = match outcome {
        Ok(Some(report)) => ("ok", None, Some(report)),
        Ok(None) => (
            "skipped",
            Some("not a DICOM Part 10 file (no DICM marker)".into()),
            None,
        ),
        Err(error) => ("error", Some(error), None),
    };
    FileOutcome {
        file,
        status,
        error,
        report,
    }
}

/// `Ok(None)`: not DICOM, skipped.
fn deidentify_one(
    deid: &Deidentifier,
    input: &Path,
    output: &Path,
    buffer: &mut Vec<u8>,
) -> Result<Option<FileReport>, String> {
    let cannot_read = |e: std::io::Error| format!("cannot read: {e}");
    let file = std::fs::File::open(input).map_err(cannot_read)?;
    let len = file.metadata().map_err(cannot_read)?.len();
    buffer.clear();
    buffer.reserve(len.min(HEAD_BYTES) as usize);
    (&file)
        .take(HEAD_BYTES)
        .read_to_end(buffer)
        .map_err(cannot_read)?;
    if !looks_like_dicom(buffer) {
        return Ok(None);
    }
    let source = OpenInput { file: &file, len };
    let mut head_limit = HEAD_BYTES;
    while !deid.options().claims(ProfileOption::CleanPixelData) {
        let header = deid
            .deidentify_header(buffer, &source)
            .map_err(|e| e.to_string())?;
        if let Some(header) = header {
            return write_atomically(output, |out| {
                out.write_all(&header.bytes)
                    .map_err(|e| format!("cannot write: {e}"))?;
                let pixel_data = header.pixel_data;
                (&file)
                    .seek(SeekFrom::Start(pixel_data.start))
                    .map_err(cannot_read)?;
                // file to file: `copy_file_range`, no copy through this process
                let wanted = pixel_data.end - pixel_data.start;
                let copied = std::io::copy(&mut (&file).take(wanted), out)
                    .map_err(|e| format!("cannot copy the pixel data: {e}"))?;
                if copied != wanted {
                    return Err("cannot read: the file changed while it was read".into());
                }
                Ok(Some(header.report))
            });
        }
        if buffer.len() as u64 >= len || head_limit >= len {
            break;
        }
        // perhaps a long header: read more of it
        let more = head_limit * 7;
        head_limit *= 8;
        buffer.reserve(more.min(len) as usize);
        (&file)
            .take(more)
            .read_to_end(buffer)
            .map_err(cannot_read)?;
    }
    // the full path: the whole file in memory
    buffer.reserve(len.saturating_sub(buffer.len() as u64) as usize);
    (&file).read_to_end(buffer).map_err(cannot_read)?;
    write_atomically(output, |out| {
        let report = deid.deidentify_to(buffer, out).map_err(|e| e.to_string())?;
        Ok(Some(report))
    })
}

/// De-identify a folder with `jobs` threads; `on_done` sees each outcome as it comes.
pub fn deidentify_dir(
    deid: &Deidentifier,
    input: &Path,
    output: &Path,
    jobs: usize,
    on_done: &(dyn Fn(&FileOutcome) + Sync),
) -> anyhow::Result<Vec<FileOutcome>> {
    let files = files_under(input)?;
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::with_capacity(files.len()));
    let work = || {
        let mut buffer = Vec::new();
        while let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
            let relative = path.strip_prefix(input).unwrap_or(path);
            let outcome = deidentify_file(deid, path, relative, output, &mut buffer);
            on_done(&outcome);
            if let Ok(mut all) = outcomes.lock() {
                all.push(outcome);
            }
        }
    };
    if jobs <= 1 {
        // on this thread, so that its CPU time can be read (see `bench`)
        work();
    } else {
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(work);
            }
        });
    }
    let mut outcomes = outcomes.into_inner().unwrap_or_default();
    outcomes.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(outcomes)
}

/// Write the report, one JSON line per file. It is stored beside the
/// outputs, so it says what was done ([`FileReport`]) and holds nothing that
/// undoes a keyed transformation (no date offset, no original value).
pub fn write_report(path: &Path, outcomes: &[FileOutcome]) -> anyhow::Result<()> {
    let mut report = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
    );
    for outcome in outcomes {
        serde_json::to_writer(&mut report, outcome)?;
        report.write_all(b"\n")?;
    }
    report.flush()?;
    Ok(())
}

fn dicom(args: DicomArgs) -> anyhow::Result<()> {
    let deid = Deidentifier::new(args.key.load()?, args.profile.options())?
        .with_pixel_memory(args.pixel_memory_mib << 20);
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let total = files_under(&args.input)?.len();
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed_precise}, eta {eta}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let outcomes = deidentify_dir(&deid, &args.input, &args.output, jobs, &|outcome| {
        if let (Some(error), "error") = (&outcome.error, outcome.status) {
            bar.println(format!("{}: {error}", outcome.file));
        }
        bar.set_message(outcome.file.clone());
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    let report_path = args
        .report
        .unwrap_or_else(|| args.output.join("deid-report.jsonl"));
    write_report(&report_path, &outcomes)?;
    let count = |status: &str| outcomes.iter().filter(|o| o.status == status).count();
    let (done, skipped, failed) = (count("ok"), count("skipped"), count("error"));
    println!(
        "{done} de-identified, {failed} failed, {skipped} skipped (not DICOM); report in {}; peak memory {}",
        report_path.display(),
        crate::bench::peak_rss_mib()
    );
    if failed > 0 {
        bail!(
            "{failed} of {} DICOM files could not be de-identified (see the report)",
            done + failed
        );
    }
    Ok(())
}

/// CPU time (user + system) of this thread so far, in seconds, to the
/// nanosecond: `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` (Linux, 64-bit;
/// `None` elsewhere). `/proc` counters move by scheduler ticks, too coarse
/// for runs of a fraction of a second.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn thread_cpu_seconds() -> Option<f64> {
    #[repr(C)]
    struct Timespec {
        seconds: i64,
        nanoseconds: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, time: *mut Timespec) -> i32;
    }
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut time = Timespec {
        seconds: 0,
        nanoseconds: 0,
    };
    // SAFETY: `time` is a valid, writable timespec (64-bit Linux layout)
    let status = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut time) };
    (status == 0).then_some(time.seconds as f64 + time.nanoseconds as f64 * 1e-9)
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn thread_cpu_seconds() -> Option<f64> {
    None
}

/// CPU seconds and wall seconds of `run`, on this thread.
fn measured<T>(run: impl FnOnce() -> T) -> (T, f64, f64) {
    let cpu_before = thread_cpu_seconds();
    let started = Instant::now();
    let value = run();
    let wall = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, thread_cpu_seconds()) {
        (Some(before), Some(after)) => after - before,
        _ => wall,
    };
    (value, cpu, wall)
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let key = args.key.load()?;
    // DICOM files only: a README beside them would be skipped, not measured
    let mut sources = Vec::new();
    for path in files_under(&args.input)? {
        let mut start = Vec::with_capacity(132);
        std::fs::File::open(&path)?
            .take(132)
            .read_to_end(&mut start)?;
        if looks_like_dicom(&start) {
            sources.push(path);
        }
    }
    if sources.is_empty() {
        bail!("no DICOM file in {}", args.input.display());
    }
    let replicated = args.work.join("in");
    std::fs::create_dir_all(&replicated)?;
    let copies = args.files.div_ceil(sources.len());
    let mut bytes_total = 0u64;
    for copy in 0..copies {
        for source in &sources {
            let name = source
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let target = replicated.join(format!("{copy:03}-{name}"));
            if !target.exists() {
                std::fs::copy(source, &target)?;
            }
            bytes_total += std::fs::metadata(&target)?.len();
        }
    }
    let count = copies * sources.len();
    println!(
        "{count} files, {:.1} MB, in {}",
        bytes_total as f64 / 1e6,
        replicated.display()
    );
    let runs: &[(&str, Profile)] = if args.headers_only {
        &[("headers only", Profile::HeadersOnly)]
    } else {
        &[
            ("headers only", Profile::HeadersOnly),
            ("with pixel cleaning", Profile::Training),
        ]
    };
    for &(label, profile) in runs {
        let deid = Deidentifier::new(key.clone(), profile.options())?;
        let output = args.work.join(format!("out-{profile:?}").to_lowercase());
        // every run writes new files (replacing old ones costs the kernel more)
        if output.exists() {
            std::fs::remove_dir_all(&output)?;
        }
        let (outcomes, cpu, wall) =
            measured(|| deidentify_dir(&deid, &replicated, &output, 1, &|_| {}));
        let outcomes = outcomes?;
        let failed = outcomes.iter().filter(|o| o.status == "error").count();
        println!(
            "{label:>20}: {count} files, {failed} failed, {:.3} s CPU ({:.3} ms per file, {:.0} files per CPU second), {:.3} s wall, peak memory so far {}",
            cpu,
            cpu * 1e3 / count as f64,
            count as f64 / cpu,
            wall,
            crate::bench::peak_rss_mib()
        );
    }
    // the de-identifier alone, files already in memory, output discarded
    let inputs: Vec<Vec<u8>> = files_under(&replicated)?
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()?;
    let deid = Deidentifier::new(key, Profile::HeadersOnly.options())?;
    let (done, cpu, _) = measured(|| {
        inputs
            .iter()
            .try_for_each(|input| deid.deidentify_to(input, &mut std::io::sink()).map(drop))
    });
    done?;
    println!(
        "{:>20}: {} files, {:.3} s CPU ({:.3} ms per file, {:.0} files per CPU second)",
        "in memory, headers",
        inputs.len(),
        cpu,
        cpu * 1e3 / inputs.len() as f64,
        inputs.len() as f64 / cpu
    );
    println!(
        "compare: /usr/bin/time -f '%U user %S system' python -m dicognito --output-directory {} \
         --assume-burned-in-annotation never --quiet {}",
        args.work.join("out-dicognito").display(),
        replicated.display()
    );
    Ok(())
}

#[cfg(test)]
#[path = "../../deid/tests/common/fixtures.rs"]
mod test_fixtures;

#[cfg(test)]
#[path = "../../deid/tests/common/corrupt.rs"]
mod test_corrupt;

#[cfg(test)]
mod tests {
    use super::test_fixtures::fixtures_dir;
    use super::*;

    #[test]
    fn files_come_out_byte_for_byte_as_from_the_in_memory_deidentifier() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = DeidKey::new(b"a test secret of enough bytes").expect("key");
        let fixtures = files_under(&fixtures_dir()).expect("fixtures present");
        let dicom: Vec<&PathBuf> = fixtures
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
            .collect();
        assert!(dicom.len() >= 18, "fixtures found");
        for profile in [Profile::HeadersOnly, Profile::Basic] {
            let deid = Deidentifier::new(key.clone(), profile.options()).expect("options");
            let mut buffer = Vec::new();
            for path in &dicom {
                let relative = Path::new(path.file_name().expect("a name"));
                let outcome = deidentify_file(&deid, path, relative, dir.path(), &mut buffer);
                let expected = deid
                    .deidentify(&std::fs::read(path).expect("readable"))
                    .expect("de-identified");
                assert_eq!(
                    outcome.status, "ok",
                    "{}: {:?}",
                    outcome.file, outcome.error
                );
                let written = std::fs::read(dir.path().join(relative)).expect("written");
                assert!(
                    written == expected.bytes,
                    "{profile:?} {}: not the in-memory bytes",
                    outcome.file
                );
                assert_eq!(
                    serde_json::to_string(&outcome.report).expect("json"),
                    serde_json::to_string(&expected.report).expect("json")
                );
            }
        }
        let leftovers = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
            .count();
        assert_eq!(leftovers, 0, "no temporary file left behind");
    }

    #[test]
    fn the_report_beside_the_outputs_holds_no_date_offset_and_no_original_identifier() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (input, output) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir_all(&input).expect("mkdir");
        let fixture = fixtures_dir().join("OBXXXX1A.dcm");
        std::fs::copy(&fixture, input.join("a.dcm")).expect("fixture present");
        let original =
            deid::parse(&std::fs::read(&fixture).expect("readable")).expect("fixture parses");
        let value = |keyword| {
            original
                .element_by_name(keyword)
                .expect("present")
                .to_str()
                .expect("text")
                .trim_end_matches(['\0', ' '])
                .to_string()
        };
        let key = DeidKey::new(b"a test secret of enough bytes").expect("key");
        let deid = Deidentifier::new(key, Options::training()).expect("options");
        let outcomes = deidentify_dir(&deid, &input, &output, 1, &|_| {}).expect("batch");
        let path = output.join("deid-report.jsonl");
        write_report(&path, &outcomes).expect("report written");
        let report = std::fs::read_to_string(&path).expect("report readable");
        assert!(report.contains("\"status\":\"ok\""), "{report}");
        assert!(report.contains("\"boxes\""), "pixel regions are reported");
        assert!(!report.contains("offset"), "{report}");
        for keyword in [
            "PatientID",
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
        ] {
            let original = value(keyword);
            assert!(original.len() >= 3, "{keyword}: {original}");
            assert!(
                !report.contains(&original),
                "{keyword} {original} in {report}"
            );
        }
    }

    #[test]
    fn a_batch_reports_bad_files_and_writes_only_the_good_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (input, output) = (dir.path().join("in"), dir.path().join("out"));
        std::fs::create_dir_all(input.join("sub")).expect("mkdir");
        std::fs::write(input.join("notes.txt"), b"not dicom").expect("write");
        let mut truncated = vec![0u8; 128];
        truncated.extend_from_slice(b"DICM\x02\x00");
        std::fs::write(input.join("broken.dcm"), truncated).expect("write");
        let fixture = fixtures_dir().join("color-px.dcm");
        std::fs::copy(&fixture, input.join("sub/good.dcm")).expect("fixture present");
        let key = DeidKey::new(b"a test secret of enough bytes").expect("key");
        let deid = Deidentifier::new(key, Options::training()).expect("options");
        let outcomes = deidentify_dir(&deid, &input, &output, 2, &|_| {}).expect("batch");
        let statuses: Vec<&str> = outcomes.iter().map(|o| o.status).collect();
        assert_eq!(statuses, ["error", "skipped", "ok"]);
        assert!(output.join("sub/good.dcm").exists());
        assert!(!output.join("broken.dcm").exists());
        let leftovers = files_under(&output).expect("list");
        assert_eq!(
            leftovers,
            [output.join("sub/good.dcm")],
            "no partial file left behind"
        );
    }

    #[test]
    fn corrupt_files_fail_alone_and_the_batch_says_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("in");
        std::fs::create_dir_all(&input).expect("mkdir");
        let good = ["ExplVR_BigEnd.dcm", "OBXXXX1A_rle.dcm", "color-px.dcm"];
        for name in good {
            std::fs::copy(fixtures_dir().join(name), input.join(name)).expect("fixture present");
        }
        let rle = std::fs::read(fixtures_dir().join("OBXXXX1A_rle.dcm")).expect("readable");
        std::fs::write(
            input.join("corrupt-rle.dcm"),
            super::test_corrupt::truncated_rle(&rle),
        )
        .expect("write");
        // 64 MiB declared in a 480 KB file (the length check refuses any lie)
        let native = std::fs::read(fixtures_dir().join("OBXXXX1A.dcm")).expect("readable");
        std::fs::write(
            input.join("lying.dcm"),
            super::test_corrupt::lying_pixel_data_length(&native, 64 << 20),
        )
        .expect("write");
        let key_file = dir.path().join("key");
        std::fs::write(&key_file, b"a test secret of enough bytes").expect("write");
        for jobs in [1, 2] {
            let output = dir.path().join(format!("out-{jobs}"));
            let result = run(DeidCommand::Dicom(DicomArgs {
                input: input.clone(),
                output: output.clone(),
                profile: Profile::Training,
                report: None,
                jobs: Some(jobs),
                pixel_memory_mib: deid::pixel::DEFAULT_PIXEL_MEMORY >> 20,
                key: KeyArgs {
                    key_file: Some(key_file.clone()),
                    key: None,
                },
            }));
            let error = result.expect_err("one file failed");
            assert!(
                error.to_string().contains("2 of 5 DICOM files"),
                "{jobs} jobs: {error}"
            );
            let report =
                std::fs::read_to_string(output.join("deid-report.jsonl")).expect("report written");
            let lines: Vec<serde_json::Value> = report
                .lines()
                .map(|l| serde_json::from_str(l).expect("json line"))
                .collect();
            assert_eq!(lines.len(), 5, "{report}");
            for line in &lines {
                let (file, error) = (line["file"].as_str(), line["error"].as_str());
                match file.expect("file") {
                    "corrupt-rle.dcm" => assert!(
                        error.is_some_and(
                            |e| e.contains("1.2.840.10008.1.2.5") && e.contains("segment 1")
                        ),
                        "{line}"
                    ),
                    "lying.dcm" => assert!(
                        error
                            .is_some_and(|e| e.contains("(7FE0,0010)")
                                && e.contains("declares 67108864 bytes")),
                        "{line}"
                    ),
                    _ => assert_eq!(line["status"], "ok", "{line}"),
                }
                if error.is_some() {
                    assert_eq!(line["status"], "error", "{line}");
                }
            }
            let mut written = files_under(&output).expect("list");
            written.retain(|p| !p.ends_with("deid-report.jsonl"));
            let expected: Vec<PathBuf> = good.iter().map(|n| output.join(n)).collect();
            assert_eq!(
                written, expected,
                "{jobs} jobs: the good files, nothing partial"
            );
        }
    }

    #[test]
    fn a_panic_while_writing_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.dcm");
        let panicked = std::panic::catch_unwind(|| {
            write_atomically(&path, |file| -> Result<(), String> {
                file.write_all(b"half a file").map_err(|e| e.to_string())?;
                panic!("a bug while writing");
            })
        });
        assert!(panicked.is_err());
        let left: Vec<PathBuf> = files_under(dir.path()).expect("list");
        assert!(left.is_empty(), "{left:?}");
    }
}
