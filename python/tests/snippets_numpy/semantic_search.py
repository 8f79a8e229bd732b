# snippets/semantic_search.py rewritten with numpy instead of torch.
#   - the test rewrites `import clip`; MODEL, IMAGES and QUERY are injected.
# Results: text, image_features, text_features, scores, values, indices.
import numpy as np
import clip
from PIL import Image

model, preprocess = clip.load(MODEL, device="cpu")

images = np.stack([preprocess(Image.open(p)) for p in IMAGES])
text = clip.tokenize([QUERY])

image_features = model.encode_image(images)
text_features = model.encode_text(text)

image_features /= np.linalg.norm(image_features, axis=-1, keepdims=True)
text_features /= np.linalg.norm(text_features, axis=-1, keepdims=True)
scores = (text_features @ image_features.T)[0]
indices = np.argsort(-scores, kind="stable")[:3]
values = scores[indices]

for value, index in zip(values, indices):
    print(f"{value.item():.4f}  {IMAGES[index]}")
