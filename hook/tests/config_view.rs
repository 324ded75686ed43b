//! The hook's lenient view of `config.json` reads the same values as
//! oci-spec's full OCI types, on configs both can read: the view's leaves
//! follow the runtime spec's names and types, checked here, so the hook
//! needs no oci-spec (and its regex engine) at run time.

use std::path::Path;

use mig_cdi_hook::config::{CapSpelling, Config};
use oci_spec::runtime::Spec;
use serde_json::json;

fn both(value: serde_json::Value) -> (Spec, Config) {
    let text = value.to_string();
    let spec: Spec = serde_json::from_str(&text).expect("oci-spec reads it");
    let view = Config::parse(text.as_bytes(), Path::new("config.json")).expect("view reads it");
    (spec, view)
}

#[test]
fn the_view_reads_what_oci_spec_reads() {
    let mut config = serde_json::to_value(Spec::default()).unwrap();
    config["process"]["env"] = json!(["PATH=/bin", "NVIDIA_VISIBLE_DEVICES=0:1", "X=a=b"]);
    config["process"]["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN", "CAP_CHOWN"]);
    config["linux"]["resources"]["devices"] = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 241, "minor": 12, "access": "r"},
        {"allow": true, "type": "c", "major": 195, "access": "rw"},
        {"allow": true, "type": "b", "major": 8, "minor": -1, "access": "m"},
    ]);
    config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 2000, "size": 1}]);
    config["annotations"] = json!({"mig-cdi/devices": "0:1", "other": "x"});
    config["root"]["path"] = json!("/abs/rootfs");
    let (spec, view) = both(config);

    let process = spec.process().as_ref().unwrap();
    let env = process.env().as_ref().unwrap();
    let visible: Vec<&str> = env
        .iter()
        .filter_map(|e| e.strip_prefix("NVIDIA_VISIBLE_DEVICES="))
        .collect();
    assert_eq!(view.env("NVIDIA_VISIBLE_DEVICES"), visible);
    let bounding = process
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .as_ref()
        .unwrap();
    assert!(bounding.contains(&oci_spec::runtime::Capability::SysAdmin));
    assert_eq!(view.bounding("CAP_SYS_ADMIN"), CapSpelling::Exact);

    let linux = spec.linux().as_ref().unwrap();
    let theirs = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    let ours = view.device_rules().unwrap();
    assert_eq!(theirs.len(), ours.len());
    for (t, o) in theirs.iter().zip(&ours) {
        assert_eq!(t.allow(), o.allow);
        let number = |n: Option<i64>| n.filter(|n| *n >= 0).map(|n| n as u32);
        assert_eq!(number(t.major()), o.major, "{t:?}");
        assert_eq!(number(t.minor()), o.minor, "{t:?}");
        assert_eq!(t.access().as_deref().unwrap_or(""), o.access.to_string());
    }
    let uid = linux.uid_mappings().as_ref().unwrap()[0].host_id();
    let gid = linux.gid_mappings().as_ref().unwrap()[0].host_id();
    assert_eq!(view.root_owner().unwrap(), (uid, gid));
    assert_eq!(
        spec.annotations().as_ref().unwrap()["mig-cdi/devices"],
        view.annotation().unwrap()
    );
    assert_eq!(
        view.root_path(Path::new("/b")).unwrap(),
        spec.root().as_ref().unwrap().path().clone()
    );
}
