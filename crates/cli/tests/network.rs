//! Eighteen hospitals and their coordinator on a WAN, on one machine: each process in its own
//! network namespace, its `eth0` a TAP device on a WAN emulated by the test (a learning switch
//! that delays and loses frames), giving every hospital 20–80 ms of round-trip time to the
//! coordinator and 1% frame loss each way on its link. During one
//! protected plan (SecAgg+, DP-SGD) one hospital is cut off for several rounds and comes back,
//! and the coordinator is killed (SIGKILL) and restarted. Rounds go on with a quorum, the cut-off
//! hospital rejoins and contributes again, the plan completes, the ledger verifies and what
//! witnesses cosigned was never lost. A packet capture of the whole run
//! (tcpdump on the coordinator's interface, which every federation message crosses) holds none of
//! the canary identifiers planted in every hospital's EHR.
//!
//! Needs root (run as another user, it says so and passes), iproute2 (`ip netns`),
//! `/dev/net/tun` and tcpdump; as root, where one is missing the test says so and passes, unless
//! `COHORT_REQUIRE_TOOLS=1` (CI), where it fails.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Addresses, Coordinator, Hospital, aggregated_round, load_ehr, protected_plan,
    published_ledger_size, set_up, start_node_with, verify_ledger, workdir,
};

const HOSPITALS: usize = 18;
/// The hospital cut off for a while.
const CUT_OFF: usize = 5;
const PORT: u16 = 7443;

/// One-way delay of hospital `i`'s link (both directions): 10–40 ms, so 20–80 ms round trips.
fn delay_ms(i: usize) -> u64 {
    10 + (i as u64 * 7) % 31
}

fn name(i: usize) -> String {
    format!("hospital-{i:02}")
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why this machine cannot run the test, if it cannot.
fn missing_tools() -> Option<String> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let probe = format!("cohort-probe-{}", std::process::id());
    if !works("ip", &["netns", "add", &probe]) {
        return Some("cannot create network namespaces (needs root and iproute2)".into());
    }
    works("ip", &["netns", "del", &probe]);
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    if !works("tcpdump", &["--version"]) {
        return Some("tcpdump is not installed".into());
    }
    None
}

/// The namespaces of one run and the WAN between them; all removed when dropped.
struct Network {
    prefix: String,
    hosts: usize,
    wan: wan::Wan,
    capture: Option<Child>,
}

impl Network {
    /// `hosts` namespaces (host 0 the coordinator at 10.77.0.1, host i at 10.77.0.(i+1)),
    /// each with an `eth0` on the emulated WAN; hospital links delayed and lossy.
    fn create(hosts: usize) -> Network {
        let prefix = format!("cohort{}", std::process::id());
        let mut links = Vec::new();
        for i in 0..hosts {
            let ns = format!("{prefix}-h{i}");
            run("ip", &["netns", "add", &ns]);
            run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
            let device = format!("c{}h{i}", std::process::id() % 100_000);
            let tap = wan::Tap::create(&device);
            run("ip", &["link", "set", &device, "netns", &ns]);
            run("ip", &["-n", &ns, "link", "set", &device, "name", "eth0"]);
            let address = format!("10.77.0.{}/24", i + 1);
            run("ip", &["-n", &ns, "addr", "add", &address, "dev", "eth0"]);
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            let (delay, loss) = if i == 0 {
                (Duration::ZERO, 0.0)
            } else {
                (Duration::from_millis(delay_ms(i)), 0.01)
            };
            links.push(wan::Link { tap, delay, loss });
        }
        Network {
            prefix,
            hosts,
            wan: wan::Wan::start(links, 17),
            capture: None,
        }
    }

    fn host(&self, i: usize) -> String {
        format!("{}-h{i}", self.prefix)
    }

    /// The wrapper that runs a program in host `i`'s namespace.
    fn exec(&self, i: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.host(i)]
    }

    /// Cut host `i` off the WAN (every frame to or from it lost), or link it again.
    fn set_link(&self, i: usize, up: bool) {
        self.wan.set_cut(i, !up);
    }

    /// Record every packet host `i` sends or receives into `file`.
    fn start_capture(&mut self, i: usize, file: &Path) {
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.host(i),
                "tcpdump",
                "-i",
                "eth0",
                "-s",
                "0",
                "-U",
                "-w",
            ])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.capture = Some(child);
        // tcpdump needs a moment to open the interface.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Stop the capture, letting tcpdump flush it.
    fn stop_capture(&mut self) {
        if let Some(mut child) = self.capture.take() {
            run("kill", &["-INT", &child.id().to_string()]);
            child.wait().unwrap();
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        if let Some(mut child) = self.capture.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.wan.stop();
        for i in 0..self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.host(i)])
                .status();
        }
    }
}

/// A WAN emulated in user space: every host's `eth0` is a TAP device whose frames this
/// switch forwards (learning which MAC address is behind which link) after the sender's and
/// the receiver's link delays, losing each frame with each link's loss probability. (The
/// kernels these tests run on may lack `tc netem`.)
mod wan {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use rand::{Rng, SeedableRng};

    /// A TAP device, as a file descriptor of frames.
    pub struct Tap(OwnedFd);

    impl Tap {
        /// Create TAP device `name` (no packet-information header).
        pub fn create(name: &str) -> Tap {
            const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
            const IFF_TAP: libc::c_short = 0x0002;
            const IFF_NO_PI: libc::c_short = 0x1000;
            #[repr(C)]
            struct IfReq {
                name: [u8; 16],
                flags: libc::c_short,
                pad: [u8; 22],
            }
            // SAFETY: open(2) on a NUL-terminated path; the descriptor is owned below.
            let fd =
                unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_NONBLOCK) };
            assert!(fd >= 0, "cannot open /dev/net/tun");
            // SAFETY: fd is a fresh descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let mut request = IfReq {
                name: [0; 16],
                flags: IFF_TAP | IFF_NO_PI,
                pad: [0; 22],
            };
            request.name[..name.len()].copy_from_slice(name.as_bytes());
            // SAFETY: TUNSETIFF reads and writes an ifreq, which IfReq lays out.
            let done = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut request) };
            assert!(
                done == 0,
                "TUNSETIFF {name}: {}",
                std::io::Error::last_os_error()
            );
            Tap(fd)
        }

        fn read(&self, buffer: &mut [u8]) -> Option<usize> {
            // SAFETY: reads at most buffer.len() bytes into buffer.
            let n =
                unsafe { libc::read(self.0.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
            (n > 0).then_some(n as usize)
        }

        fn write(&self, frame: &[u8]) {
            // SAFETY: writes frame.len() bytes from frame. A full queue loses the frame, as a
            // congested link would.
            unsafe { libc::write(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
        }
    }

    /// One host's link to the WAN.
    pub struct Link {
        pub tap: Tap,
        /// One-way delay of the link, each direction.
        pub delay: Duration,
        /// Probability that a frame crossing the link is lost, each direction.
        pub loss: f64,
    }

    /// A frame on its way: when it arrives, in what order it was sent, on which link.
    type Queued = (Instant, u64, usize, Vec<u8>);

    struct Shared {
        links: Vec<Link>,
        cut: Vec<AtomicBool>,
        stop: AtomicBool,
        queue: Mutex<BinaryHeap<Reverse<Queued>>>,
        due: Condvar,
    }

    /// The running switch.
    pub struct Wan {
        shared: Arc<Shared>,
        threads: Vec<JoinHandle<()>>,
    }

    impl Wan {
        /// Forward frames between `links`, losses drawn from a generator seeded with `seed`.
        pub fn start(links: Vec<Link>, seed: u64) -> Wan {
            let shared = Arc::new(Shared {
                cut: links.iter().map(|_| AtomicBool::new(false)).collect(),
                links,
                stop: AtomicBool::new(false),
                queue: Mutex::new(BinaryHeap::new()),
                due: Condvar::new(),
            });
            let receive = {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || receive(&shared, seed))
            };
            let deliver = {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || deliver(&shared))
            };
            Wan {
                shared,
                threads: vec![receive, deliver],
            }
        }

        pub fn set_cut(&self, link: usize, cut: bool) {
            self.shared.cut[link].store(cut, Ordering::SeqCst);
        }

        pub fn stop(&mut self) {
            self.shared.stop.store(true, Ordering::SeqCst);
            self.shared.due.notify_all();
            for t in self.threads.drain(..) {
                let _ = t.join();
            }
        }
    }

    /// Read frames from every link; queue each for its destinations.
    fn receive(shared: &Shared, seed: u64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut behind: HashMap<[u8; 6], usize> = HashMap::new();
        let mut polls: Vec<libc::pollfd> = shared
            .links
            .iter()
            .map(|l| libc::pollfd {
                fd: l.tap.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut buffer = vec![0u8; 65536];
        let mut sequence = 0u64;
        while !shared.stop.load(Ordering::SeqCst) {
            // SAFETY: polls is a valid array of pollfd of the given length.
            let ready = unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as _, 50) };
            if ready <= 0 {
                continue;
            }
            for from in 0..polls.len() {
                if polls[from].revents & libc::POLLIN == 0 {
                    continue;
                }
                while let Some(n) = shared.links[from].tap.read(&mut buffer) {
                    let frame = &buffer[..n];
                    if n < 14 {
                        continue;
                    }
                    let source: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
                    behind.insert(source, from);
                    let destination: [u8; 6] = frame[..6].try_into().expect("6 bytes");
                    let targets: Vec<usize> = match behind.get(&destination) {
                        Some(&to) if destination[0] & 1 == 0 => vec![to],
                        _ => (0..polls.len()).filter(|&to| to != from).collect(),
                    };
                    let now = Instant::now();
                    let mut queue = shared.queue.lock().expect("queue lock");
                    for to in targets {
                        let (a, b) = (&shared.links[from], &shared.links[to]);
                        let cut = shared.cut[from].load(Ordering::SeqCst)
                            || shared.cut[to].load(Ordering::SeqCst);
                        let lost = rng.random_bool(a.loss) || rng.random_bool(b.loss);
                        if cut || lost {
                            continue;
                        }
                        sequence += 1;
                        queue.push(Reverse((
                            now + a.delay + b.delay,
                            sequence,
                            to,
                            frame.to_vec(),
                        )));
                    }
                    shared.due.notify_one();
                }
            }
        }
    }

    /// Write each queued frame to its link once its time has come.
    fn deliver(shared: &Shared) {
        let mut queue = shared.queue.lock().expect("queue lock");
        while !shared.stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            match queue.peek() {
                Some(Reverse((due, ..))) if *due <= now => {
                    let Reverse((_, _, to, frame)) = queue.pop().expect("peeked");
                    shared.links[to].tap.write(&frame);
                }
                Some(Reverse((due, ..))) => {
                    let wait = *due - now;
                    queue = shared.due.wait_timeout(queue, wait).expect("queue lock").0;
                }
                None => {
                    queue = shared
                        .due
                        .wait_timeout(queue, Duration::from_millis(50))
                        .expect("queue lock")
                        .0;
                }
            }
        }
    }
}

/// The nodes' processes, killed if the test ends before they do.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for node in &mut self.0 {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

/// Each hospital's EHR: its UCI centre's records, one patient of which carries a canary name
/// and identifier. Returns the canaries.
fn load_ehrs(dir: &Path, hospitals: &[Hospital]) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut canaries = Vec::new();
    for (i, h) in hospitals.iter().enumerate() {
        let family = format!("CANARYFAMILY{i:02}X");
        let identifier = format!("CANARY-ID-{i:02}-4242");
        runtime.block_on(async {
            let store = load_ehr(dir, h).await;
            let id = format!("uci-{}-3", h.centre);
            let stored = store.read("Patient", &id).await.unwrap();
            let mut patient: serde_json::Value =
                serde_json::from_str(&stored.content.unwrap()).unwrap();
            patient["name"] = serde_json::json!([{"family": family, "given": ["Zebulon"]}]);
            patient["identifier"] =
                serde_json::json!([{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": identifier}]);
            let mut tx = store.begin().await.unwrap();
            tx.update("Patient", &id, patient, None).await.unwrap();
            tx.commit().await.unwrap();
            store.close().await;
        });
        canaries.extend([family, identifier]);
    }
    canaries
}

/// Seconds between consecutive "round aggregated" lines of rounds `from..=to`.
fn round_times(lines: &[(Instant, String)], from: u32, to: u32) -> Vec<f64> {
    let at = |round: u32| {
        lines
            .iter()
            .find(|(_, l)| aggregated_round(l) == Some(round))
            .map(|(t, _)| *t)
    };
    (from..=to)
        .filter_map(|r| Some((at(r)? - at(r - 1)?).as_secs_f64()))
        .collect()
}

#[test]
fn eighteen_hospitals_on_a_lossy_wan_survive_a_partition_and_a_coordinator_restart() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    if let Some(why) = missing_tools() {
        assert!(
            std::env::var("COHORT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "the network test cannot run: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let hospitals: Vec<Hospital> = (1..=HOSPITALS)
        .map(|i| Hospital {
            name: name(i),
            centre: learn::heart::CENTRES[i % learn::heart::CENTRES.len()],
            ehr: true,
        })
        .collect();
    let mut plan = protected_plan(14, 20);
    plan.hospitals = hospitals.iter().map(|h| h.name.clone()).collect();
    plan.min_hospitals = 12;
    plan.validate().unwrap();

    let (_guard, dir) = workdir();
    let at = Addresses {
        listen: format!("10.77.0.1:{PORT}"),
        dial: format!("https://10.77.0.1:{PORT}"),
    };
    set_up(&dir, &plan, &hospitals, &at);
    let canaries = load_ehrs(&dir, &hospitals);

    let mut network = Network::create(HOSPITALS + 1);
    let capture = dir.join("federation.pcap");
    network.start_capture(0, &capture);
    let wrapper = |i: usize| network.exec(i);
    let coordinator_exec = wrapper(0);
    let coordinator_exec: Vec<&str> = coordinator_exec.iter().map(String::as_str).collect();
    let coordinator = Coordinator::start_with(&coordinator_exec, &dir);
    let mut nodes = Nodes(
        (1..=HOSPITALS)
            .map(|i| {
                let w = wrapper(i);
                let w: Vec<&str> = w.iter().map(String::as_str).collect();
                start_node_with(&w, &dir, &name(i))
            })
            .collect(),
    );

    // Rounds 1-3 with everyone, then hospital 05 is cut off for rounds 4-7.
    let mut lines = coordinator.lines_until(&["round aggregated", "round=3 "]);
    network.set_link(CUT_OFF, false);
    lines.extend(coordinator.lines_until(&["round aggregated", "round=7 "]));
    let missed: Vec<&String> = lines
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l.contains("round aggregated") && l.contains(&name(CUT_OFF)))
        .collect();
    assert!(
        !missed.is_empty(),
        "no round went on without the cut-off hospital"
    );
    for l in &missed {
        assert!(l.contains("contributors=17"), "{l}");
    }
    let rounds_cut_off = missed.len();
    network.set_link(CUT_OFF, true);
    let healed = lines.len();
    lines.extend(coordinator.lines_until(&["round aggregated", "round=10 "]));
    let published = published_ledger_size(&dir);
    coordinator.kill();

    let restarted = Coordinator::start_with(&coordinator_exec, &dir);
    restarted.wait_for(&["resuming stored plan"]);
    let after = restarted.lines_until(&["plan completed"]);
    for node in &mut nodes.0 {
        assert!(node.wait().unwrap().success(), "a node failed");
    }
    restarted.finish();
    network.stop_capture();
    let rejoined = lines[healed..]
        .iter()
        .chain(&after)
        .any(|(_, l)| l.contains("round aggregated") && l.contains("contributors=18"));
    assert!(rejoined, "the cut-off hospital never contributed again");

    let audit = verify_ledger(&dir);
    assert!(published_ledger_size(&dir) >= published, "{audit}");

    let pcap = std::fs::read(&capture).unwrap();
    assert!(
        pcap.len() > 100_000,
        "the capture holds {} bytes",
        pcap.len()
    );
    for canary in &canaries {
        assert!(
            !pcap.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "{canary} crossed the network"
        );
    }
    let start = lines[0].0;
    for (at, line) in lines.iter().chain(&after) {
        if let Some(round) = line.split("round aggregated ").nth(1) {
            eprintln!("{:7.2} s  {round}", (*at - start).as_secs_f64());
        }
    }
    let rtt_max = 2 * (1..=HOSPITALS).map(delay_ms).max().unwrap();
    eprintln!(
        "{rounds_cut_off} rounds went on without {}; seconds per round: rounds 2-3 {:?}, \
         rounds 9-10 {:?}; RTT-bound minimum {:.2} s (4 secure-aggregation steps x {rtt_max} \
         ms); capture {} bytes",
        name(CUT_OFF),
        round_times(&lines, 2, 3),
        round_times(&lines, 9, 10),
        4.0 * rtt_max as f64 / 1000.0,
        pcap.len()
    );
}
