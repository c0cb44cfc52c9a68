//! Property tests of STATELESS_RESET: a reset is never larger than its trigger, only the exact
//! token matches, and no input makes the candidate parser or the token finder panic.

use jvpn_wire::frame::DataPacket;
use jvpn_wire::reset::{RESET_MAX_LEN, RESET_MIN_LEN, candidate_token, reset_len};
use jvpn_wire::{ResetKey, ResetToken, TokenKey, write_reset};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_reset_is_strictly_shorter_than_any_trigger_it_answers(
        trigger_len in 0usize..70_000,
        seed in any::<u64>(),
        index in any::<u32>(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let token = ResetKey::new(&TokenKey::from_bytes([1; 32])).token(index);
        let mut out = [0u8; RESET_MAX_LEN];

        match write_reset(&token, trigger_len, &mut rng, &mut out) {
            Ok(len) => {
                prop_assert!(len < trigger_len);
                prop_assert!((RESET_MIN_LEN..=RESET_MAX_LEN).contains(&len));
                prop_assert!(token.matches(&out[..len]));
                prop_assert!(DataPacket::new_checked(&out[..len]).is_ok());
            }
            Err(_) => prop_assert!(trigger_len <= RESET_MIN_LEN),
        }
        prop_assert_eq!(reset_len(trigger_len, &mut rng).is_some(), trigger_len > RESET_MIN_LEN);
    }

    #[test]
    fn random_bytes_never_match_a_token_unless_they_end_with_it(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        token in any::<[u8; 16]>(),
    ) {
        let token = ResetToken::from_bytes(token);

        let matched = token.matches(&bytes);

        let ends_with = bytes.len() >= RESET_MIN_LEN && bytes.ends_with(token.as_bytes());
        prop_assert!(!matched || ends_with);
        prop_assert_eq!(candidate_token(&bytes).is_some() && ends_with, matched);
    }

    #[test]
    fn the_token_finder_never_panics_on_any_payload(
        bytes in prop::collection::vec(any::<u8>(), 0..1100),
    ) {
        let _ = ResetToken::find_in_resp(&bytes);
        let _ = jvpn_wire::ReattachRespPayload::parse(&bytes);
    }
}
