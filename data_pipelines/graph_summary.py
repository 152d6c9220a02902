"""What a set of role graphs holds, next to the official HGR release.

Imports nothing but the standard library, so that `parse_captions` stays
light.
"""

import collections
from typing import Dict, Mapping, Sequence

# Share of the non-ROOT nodes per role (%) in one dataset's
# sent2rolegraph.augment.json of the official release (124,654 sentences,
# 626,307 nodes; AllenNLP BERT SRL, then the release's conversion). Roles
# under 0.05% are left out.
OFFICIAL_ROLE_SHARES = {
    'V': 33.4, 'ARG1': 21.98, 'ARG0': 21.06, 'ARG2': 6.13, 'ARGM-DIR': 4.84,
    'ARGM-LOC': 3.73, 'ARGM-TMP': 2.88, 'ARGM-MNR': 2.65, 'ARGM-ADV': 0.77,
    'NOUN': 0.57, 'ARG4': 0.3, 'ARGM-PRP': 0.29, 'ARG3': 0.28,
    'R-ARG0': 0.26, 'ARGM-PRD': 0.23, 'R-ARG1': 0.17, 'ARGM-GOL': 0.12,
    'ARGM-COM': 0.11, 'C-ARG1': 0.06}
# Share of its sentences with at least one frame (an edge).
OFFICIAL_SHARE_WITH_FRAME = 97.2


def has_subject(graph, verb_key: str) -> bool:
  """Whether a framed verb has an ARG0, or an ARG0/ARG1 node before it."""
  nodes, edges = graph
  verb_start = nodes[verb_key]['spans'][0]
  for verb, argument, role in edges:
    if verb != verb_key:
      continue
    if role == 'ARG0' or (role == 'ARG1' and
                          nodes[argument]['spans'][0] < verb_start):
      return True
  return False


def summarise(graphs: Mapping[str, Sequence], empty: int = 0
              ) -> Dict[str, object]:
  """Counts of a sentence -> graph mapping.

  Args:
    graphs: role graphs in the release format.
    empty: input captions that were skipped for being empty.
  """
  roles = collections.Counter()
  without_frame = framed_verbs = verbs_without_subject = 0
  for graph in graphs.values():
    nodes, edges = graph
    roles.update(n['role'] for k, n in nodes.items() if k != 'ROOT')
    without_frame += not edges
    for verb in dict.fromkeys(v for v, _, _ in edges):
      framed_verbs += 1
      verbs_without_subject += not has_subject(graph, verb)
  return dict(sentences=len(graphs), empty=empty,
              without_frame=without_frame, framed_verbs=framed_verbs,
              verbs_without_subject=verbs_without_subject,
              role_counts=dict(roles.most_common()))


def describe(summary: Mapping[str, object]) -> str:
  """A few lines for the end of a run; roles next to the official shares."""
  sentences = max(1, summary['sentences'])
  nodes = max(1, sum(summary['role_counts'].values()))
  lines = [
      f"{summary['sentences']} sentences ({summary['empty']} empty captions "
      'skipped); '
      f"{summary['without_frame']} "
      f"({100 * summary['without_frame'] / sentences:.1f}%) without any "
      f'frame (official release: {100 - OFFICIAL_SHARE_WITH_FRAME:.1f}%); '
      f"{summary['verbs_without_subject']} of {summary['framed_verbs']} "
      'framed verbs without a subject.',
      'Nodes per role, here / official release:']
  roles = sorted(set(summary['role_counts']) | set(OFFICIAL_ROLE_SHARES),
                 key=lambda r: -OFFICIAL_ROLE_SHARES.get(r, 0))
  lines.append(', '.join(
      f'{role} {100 * summary["role_counts"].get(role, 0) / nodes:.1f}% / '
      f'{OFFICIAL_ROLE_SHARES.get(role, 0):.1f}%' for role in roles))
  return '\n'.join(lines)
