"""creatorpass signer: custodial keys behind a policy that reads every transaction before signing.

See signer/README.md for the policy, the burn-batch metadata format and the operator commands.
"""

from signer.errors import Refusal, SignerError

__all__ = ["Refusal", "SignerError"]
