//! Unit tests of the transfer engine's matching of headers to expects, and of its staging pool.

use super::header::Header;
use super::progress::check_header;
use super::*;

fn region_expect(region: &[CellBox], elem_size: usize) -> Expect {
    Expect {
        key: TransferKey(4, 1, 0),
        token: Token(0),
        kind: ExpectKind::Region {
            layout: AllocLayout { bounds: CellBox::d2([0, 0], [100, 100]), elem_size },
            dst: std::ptr::null_mut(),
        },
        region: region.to_vec(),
        region_volume: region.iter().map(CellBox::volume).sum(),
        dsts: Vec::new(),
        received: Vec::new(),
        received_volume: 0,
        pieces: Vec::new(),
        outstanding: 0,
        index: None,
    }
}

fn header(sender: Rank, bounds: CellBox, bytes: usize) -> Header {
    Header { sender, tag: 1, key: TransferKey(4, 1, 0), bounds, bytes, chunk: 1 << 20, inline: false, group: None }
}

#[test]
fn a_box_spanning_two_expected_boxes_is_accepted() {
    let e = region_expect(&[CellBox::d2([0, 0], [10, 5]), CellBox::d2([0, 5], [10, 10])], 4);
    check_header(&e, &header(1, CellBox::d2([2, 2], [8, 8]), 36 * 4)).unwrap();
}

#[test]
fn a_box_outside_the_region_is_an_error_naming_key_sender_and_box() {
    let e = region_expect(&[CellBox::d2([0, 0], [10, 5])], 4);
    let err = check_header(&e, &header(2, CellBox::d2([0, 4], [2, 6]), 4 * 4)).unwrap_err();
    assert!(matches!(err, TransferError::OutsideRegion { sender: 2, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "Transfer (4, 1, 0): rank 2 announces [0,4] - [2,6], which lies outside the expected region {[0,0] - [10,5]}"
    );
}

#[test]
fn cells_that_arrive_twice_are_an_error() {
    let mut e = region_expect(&[CellBox::d1(0, 100)], 8);
    e.received.push(CellBox::d1(0, 10));
    let err = check_header(&e, &header(1, CellBox::d1(5, 20), 15 * 8)).unwrap_err();
    assert!(matches!(err, TransferError::Duplicate { overlap, .. } if overlap == CellBox::d1(5, 10)), "{err}");
    check_header(&e, &header(1, CellBox::d1(10, 20), 10 * 8)).unwrap();
}

#[test]
fn a_length_that_disagrees_with_the_element_size_is_an_error() {
    let e = region_expect(&[CellBox::d1(0, 100)], 8);
    let err = check_header(&e, &header(1, CellBox::d1(0, 10), 40)).unwrap_err();
    assert!(matches!(err, TransferError::LengthMismatch { expected: 80, .. }), "{err}");
    // An empty box with a payload is malformed too.
    assert!(check_header(&e, &header(1, CellBox::EMPTY, 8)).is_err());
    check_header(&e, &header(1, CellBox::EMPTY, 0)).unwrap();
}

#[test]
fn a_gather_takes_one_piece_per_sender_up_to_its_count() {
    let mut e = region_expect(&[], 1);
    e.kind = ExpectKind::Gather { senders: 2 };
    check_header(&e, &header(0, CellBox::EMPTY, 0)).unwrap();
    e.pieces.push(GatherPiece { sender: 0, bounds: CellBox::EMPTY, bytes: Vec::new() });
    let err = check_header(&e, &header(0, CellBox::d1(0, 1), 8)).unwrap_err();
    assert!(matches!(err, TransferError::DuplicateSender { sender: 0, .. }), "{err}");
    e.pieces.push(GatherPiece { sender: 1, bounds: CellBox::EMPTY, bytes: Vec::new() });
    let err = check_header(&e, &header(2, CellBox::d1(0, 1), 8)).unwrap_err();
    assert!(matches!(err, TransferError::TooManySenders { expected: 2, .. }), "{err}");
}

#[test]
fn the_staging_pool_reuses_the_best_fitting_buffer() {
    let mut pool = StagingPool::default();
    pool.give(Vec::with_capacity(100));
    pool.give(Vec::with_capacity(1000));
    let b = pool.take(50);
    assert!(b.capacity() >= 100 && b.capacity() < 1000);
    assert_eq!(b.len(), 50);
    let big = pool.take(5000);
    assert_eq!(big.len(), 5000);
    assert!(pool.free.is_empty());
}

fn early(key: TransferKey, sender: Rank) -> EarlyHeader {
    EarlyHeader {
        header: Header { key, ..header(sender, CellBox::d1(0, 1), 4) },
        inline: Vec::new(),
        elsewhere: false,
        boxes: Vec::new(),
    }
}

#[test]
fn early_headers_are_found_by_key_in_arrival_order() {
    let (a, b) = (TransferKey(1, 0, 0), TransferKey(2, 0, 0));
    let mut kept = EarlyHeaders::default();
    // A backlog of other keys' headers around the two of `a`.
    for t in 10..1010 {
        kept.push(early(TransferKey(t, 0, 0), 1));
    }
    kept.push(early(a, 2));
    kept.push(early(b, 1));
    kept.push(early(a, 1));
    assert_eq!((kept.len(), kept.peak()), (1003, 1003));
    let senders = |list: &[EarlyHeader]| list.iter().map(|u| u.header.sender).collect::<Vec<_>>();
    assert_eq!(senders(kept.of(a)), [2, 1], "arrival order");
    assert!(kept.of(TransferKey(3, 0, 0)).is_empty());

    let mut list = kept.take(a).unwrap();
    assert_eq!(kept.len(), 1001);
    assert!(kept.of(a).is_empty() && kept.take(a).is_none());
    // The first was entered; the second is given back and stays ahead of one that arrives later.
    list.remove(0);
    kept.push(early(a, 3));
    kept.restore(a, list);
    assert_eq!(senders(kept.of(a)), [1, 3]);
    assert_eq!((kept.len(), kept.peak()), (1003, 1003));
    assert_eq!(kept.iter().filter(|u| u.header.key == a).count(), 2);

    for t in 10..1010 {
        let list = kept.take(TransferKey(t, 0, 0)).unwrap();
        assert_eq!(senders(&list), [1]);
        kept.restore(TransferKey(t, 0, 0), Vec::new());
    }
    kept.take(a).unwrap();
    kept.take(b).unwrap();
    assert!(kept.is_empty());
    assert_eq!(kept.peak(), 1003, "the high-water mark stays");
}

#[test]
fn an_early_group_of_boxes_counts_and_lists_each_box() {
    let key = TransferKey(7, 0, 0);
    let boxes: Vec<CellBox> = (0..5).map(|i| CellBox::d1(2 * i, 2 * i + 1)).collect();
    let group = Some(header::Group { count: 5, elem_size: 4 });
    let h = Header { sender: 1, tag: 0, key, bounds: CellBox::d1(0, 9), bytes: 20, chunk: 0, inline: true, group };
    let mut kept = EarlyHeaders::default();
    kept.push(early(key, 2));
    kept.push(EarlyHeader { header: h, inline: vec![0; 20], elsewhere: false, boxes: boxes.clone() });
    assert_eq!((kept.len(), kept.peak()), (6, 6), "a group counts each of its boxes");
    let listed: Vec<CellBox> = kept.of(key).iter().flat_map(|u| u.announced_boxes().iter().copied()).collect();
    assert_eq!(listed[0], CellBox::d1(0, 1));
    assert_eq!(&listed[1..], &boxes[..]);
    // Split into one inline header per box, each with its 4 bytes of the payloads.
    let parts: Vec<_> = h.parts(&boxes).map(|(p, r)| (p.bounds, p.bytes, r)).collect();
    assert_eq!(parts[2], (CellBox::d1(4, 5), 4, 8..12));
    let mut list = kept.take(key).unwrap();
    assert!(kept.is_empty());
    list.remove(0);
    kept.restore(key, list);
    assert_eq!(kept.len(), 5);
}

#[test]
fn a_region_of_many_boxes_is_matched_through_its_index_with_the_same_verdicts() {
    // 100 boxes of two cells, every fourth cell pair: indexed (more than INDEX_MIN_BOXES), given out of order.
    let mut boxes: Vec<CellBox> = (0..100).map(|i| CellBox::d1(4 * i, 4 * i + 2)).collect();
    boxes.reverse();
    let mut e = region_expect(&boxes, 4);
    e.build_index();
    assert!(e.index.is_some());
    assert_eq!(e.exact(&CellBox::d1(40, 42)), Some(89));
    assert_eq!(e.exact(&CellBox::d1(40, 41)), None);
    // A whole box, then the same again: a duplicate.
    check_header(&e, &header(1, CellBox::d1(40, 42), 8)).unwrap();
    e.note_received(CellBox::d1(40, 42));
    let err = check_header(&e, &header(1, CellBox::d1(40, 42), 8)).unwrap_err();
    assert!(matches!(err, TransferError::Duplicate { overlap, .. } if overlap == CellBox::d1(40, 42)), "{err}");
    // Half of another box, then that whole box: a duplicate found although the second header is a whole box.
    e.note_received(CellBox::d1(8, 9));
    let err = check_header(&e, &header(1, CellBox::d1(8, 10), 8)).unwrap_err();
    assert!(matches!(err, TransferError::Duplicate { overlap, .. } if overlap == CellBox::d1(8, 9)), "{err}");
    check_header(&e, &header(1, CellBox::d1(12, 14), 8)).unwrap();
    // Outside, and across a gap: refused as without the index.
    assert!(matches!(check_header(&e, &header(1, CellBox::d1(2, 3), 4)), Err(TransferError::OutsideRegion { .. })));
    assert!(matches!(check_header(&e, &header(1, CellBox::d1(0, 6), 24)), Err(TransferError::OutsideRegion { .. })));
    e.clear_received();
    check_header(&e, &header(1, CellBox::d1(40, 42), 8)).unwrap();
}

#[test]
fn overlapping_boxes_of_a_large_region_are_found_by_the_sweep() {
    let comb: Vec<CellBox> = (0..1000).map(|i| CellBox::d1(2 * i, 2 * i + 1)).collect();
    assert_eq!(geometry::first_overlap(&comb), None);
    let mut bad = comb.clone();
    bad.push(CellBox::d1(1500, 1503));
    assert_eq!(geometry::first_overlap(&bad), Some(CellBox::d1(1500, 1501)));
    // 2D: rows of boxes side by side are disjoint; a box across two rows that meets one is not.
    let mut grid: Vec<CellBox> =
        (0..20).flat_map(|r| (0..20).map(move |c| CellBox::d2([r, 3 * c], [r + 1, 3 * c + 2]))).collect();
    assert_eq!(geometry::first_overlap(&grid), None);
    grid.insert(0, CellBox::d2([5, 2], [7, 4]));
    assert_eq!(geometry::first_overlap(&grid), Some(CellBox::d2([5, 3], [6, 4])));
}
