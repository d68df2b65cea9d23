"""Model-card samples shared by the parser and the search tests."""

# Copied verbatim from /work/shared/DESIGN.md, section "Model cards".
SEED = """\
---
Training framework:
- PyTorch
- Transformers
Job type:
  Type: Natural language processing
  Algorithm: Text Generation
Industry: Intelligent assistant
Other tag:
- exbert
- en
Number of parameters: 1700000000
Open-source protocol: mit
Performance information:
- Dataset:
    Name: LAMBADA
    Permission: Public
    Link:
  Performance metric:
    PPL: 35.13
    ACC: 45.99
Training data:
- Dataset:
    Name: WebText
    Permission: Public
    Link: https://github.com/openai/gpt-2/blob/master/domains.txt
---
Other model descriptions...
"""

CBT_CN = """\
- Dataset:
    Name: CBT_CN
    Permission: Public
    Link:
  Performance metric:
    ACC: 87.65
"""

# The seed with the second performance entry the card issue lists.
SEED_WITH_CBT_CN = SEED.replace("Training data:\n", CBT_CN + "Training data:\n")
