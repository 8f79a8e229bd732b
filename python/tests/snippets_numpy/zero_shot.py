# snippets/zero_shot.py (the README's "Zero-Shot Prediction") rewritten with numpy instead of torch.
#   - the test rewrites `import clip`; MODEL, IMAGE and CLASSES are injected.
# Results: text_inputs, image_features, text_features, similarity, values, indices.
import numpy as np
import clip
from PIL import Image

# Load the model
model, preprocess = clip.load(MODEL, device="cpu")

# Prepare the inputs
image = Image.open(IMAGE)
image_input = preprocess(image)[np.newaxis]
text_inputs = np.concatenate([clip.tokenize(f"a photo of a {c}") for c in CLASSES])

# Calculate features
image_features = model.encode_image(image_input)
text_features = model.encode_text(text_inputs)

# Pick the top 5 most similar labels for the image
image_features /= np.linalg.norm(image_features, axis=-1, keepdims=True)
text_features /= np.linalg.norm(text_features, axis=-1, keepdims=True)
logits = 100.0 * image_features @ text_features.T
e = np.exp(logits - logits.max(axis=-1, keepdims=True))
similarity = e / e.sum(axis=-1, keepdims=True)
indices = np.argsort(-similarity[0], kind="stable")[:5]
values = similarity[0][indices]

# Print the result
print("\nTop predictions:\n")
for value, index in zip(values, indices):
    print(f"{CLASSES[index]:>16s}: {100 * value.item():.2f}%")
