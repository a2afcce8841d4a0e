//! `chunkload extract` must produce exactly the tree `umoci unpack` produces, for every packaging
//! standard tools give the same image in.

use crate::support::{assert_same_tree, chunkload, kitchen_sink, scratch, snapshot, umoci_unpack};

fn extract(image: &str, dest: &std::path::Path) {
    chunkload().arg("extract").arg("--quiet").arg(image).arg(dest).assert().success();
}

#[test]
fn extract_matches_umoci_unpack() {
    let ks = kitchen_sink();
    let tmp = scratch();
    let theirs = umoci_unpack(&format!("{}:ks", ks.join("oci").display()), &tmp.path().join("bundle"));
    let ours = tmp.path().join("ours");
    extract(&format!("{}:ks", ks.join("oci").display()), &ours);
    assert_same_tree(&ours, &theirs);
}

#[test]
fn every_packaging_flattens_identically() {
    let ks = kitchen_sink();
    let tmp = scratch();
    let reference = tmp.path().join("reference");
    extract(&format!("{}:ks", ks.join("oci").display()), &reference);
    let expected = snapshot(&reference);
    for (i, image) in [
        format!("{}:ks", ks.join("oci.tar").display()),
        ks.join("docker.tar").display().to_string(),
        format!("{}:chunkload/ks:latest", ks.join("docker.tar").display()),
        format!("{}:ks", ks.join("zstd").display()),
    ]
    .iter()
    .enumerate()
    {
        let dest = tmp.path().join(format!("out{i}"));
        extract(image, &dest);
        assert_eq!(snapshot(&dest), expected, "{image} flattened differently");
    }
}
