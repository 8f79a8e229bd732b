# snippets/usage.py (the OpenAI CLIP README's "Usage") rewritten with numpy instead of torch:
# it must run where torch is not installed (clip_rs then returns numpy arrays).
#   - the test rewrites `import clip` (to `import clip_rs as clip`); MODEL and IMAGE are injected.
# Results: text, logits_per_image, logits_per_text, probs.
import numpy as np
import clip
from PIL import Image

model, preprocess = clip.load(MODEL, device="cpu")

image = preprocess(Image.open(IMAGE))[np.newaxis]
text = clip.tokenize(["a diagram", "a dog", "a cat"])

logits_per_image, logits_per_text = model(image, text)
e = np.exp(logits_per_image - logits_per_image.max(axis=-1, keepdims=True))
probs = e / e.sum(axis=-1, keepdims=True)

print("Label probs:", probs)
