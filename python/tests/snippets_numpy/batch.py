# snippets/batch.py rewritten with numpy instead of torch (`np.stack` for `torch.stack`).
#   - the test rewrites `import clip`; MODEL, IMAGES and CLASSES are injected.
# Results: text, image_features, logits_per_image, logits_per_text, probs.
import numpy as np
import clip
from PIL import Image

model, preprocess = clip.load(MODEL, device="cpu")

paths = IMAGES
image = np.stack([preprocess(Image.open(p)) for p in paths])
text = clip.tokenize(CLASSES)

image_features = model.encode_image(image)
logits_per_image, logits_per_text = model(image, text)
e = np.exp(logits_per_image - logits_per_image.max(axis=-1, keepdims=True))
probs = e / e.sum(axis=-1, keepdims=True)

for path, p in zip(paths, probs):
    print(path, CLASSES[p.argmax()], p.max())
