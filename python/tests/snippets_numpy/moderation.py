# snippets/moderation.py rewritten with numpy instead of torch.
#   - the test rewrites `import clip`; MODEL and IMAGES are injected.
# Results: text, probs, unsafe, flagged.
import numpy as np
import clip
from PIL import Image

model, preprocess = clip.load(MODEL, device="cpu")

labels = ["a violent image", "a sexually explicit image", "a safe image", "a photo of everyday life"]
unsafe_labels = 2  # the first two labels are the unsafe ones

image = np.stack([preprocess(Image.open(p)) for p in IMAGES])
text = clip.tokenize(labels)

image_features = model.encode_image(image)
text_features = model.encode_text(text)

image_features /= np.linalg.norm(image_features, axis=-1, keepdims=True)
text_features /= np.linalg.norm(text_features, axis=-1, keepdims=True)
logits = 100.0 * image_features @ text_features.T
e = np.exp(logits - logits.max(axis=-1, keepdims=True))
probs = e / e.sum(axis=-1, keepdims=True)
unsafe = probs[:, :unsafe_labels].sum(axis=-1)
flagged = probs.argmax(axis=-1) < unsafe_labels

for path, p, f in zip(IMAGES, unsafe, flagged):
    print(f"{'FLAGGED' if f else 'ok':>7s}  unsafe={p.item():.3f}  {path}")
