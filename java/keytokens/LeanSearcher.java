package keytokens;

import java.io.Closeable;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.FieldInvertState;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.StoredFields;
import org.apache.lucene.index.Term;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.BoostQuery;
import org.apache.lucene.search.CollectionStatistics;
import org.apache.lucene.search.Collector;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.LeafCollector;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.Scorable;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.TermStatistics;
import org.apache.lucene.search.similarities.BM25Similarity;
import org.apache.lucene.search.similarities.Similarity;
import org.apache.lucene.store.FSDirectory;

/**
 * The lean query path: terms and weights in as arrays, Lucene docids and scores out as arrays.
 *
 * It builds the query Anserini's BagOfWordsQueryGenerator builds (a BooleanQuery of boosted TermQuery clauses on
 * "contents"), scores it with the similarity SimpleImpactSearcher (score = boost x stored impact) or SimpleSearcher
 * (BM25) use, orders hits as they do (score, then the "id" doc value) and applies ScoreTiesAdjusterReranker's
 * rounding, so hits and scores are Anserini's. What it leaves out is the cost around them: no stored document is
 * loaded per hit and no object per hit crosses to Python; external ids come from a table read once. And it collects
 * the top k by (score, id) itself (TopByScoreThenId), telling Lucene the k-th score as the minimum competitive one,
 * so Lucene may skip documents that cannot enter the top (block-max WAND / MaxScore), with no field sort.
 */
public final class LeanSearcher implements Closeable {

  /** One query's hits: Lucene docids, scores, and the nanoseconds spent in Java. */
  public static final class Hits {
    public final int[] docs;
    public final float[] scores;
    public final long nanos;

    Hits(int[] docs, float[] scores, long nanos) {
      this.docs = docs;
      this.scores = scores;
      this.nanos = nanos;
    }
  }

  /** Anserini's ImpactSimilarity: the stored term frequency is the impact, times the query weight. */
  private static final class ImpactSimilarity extends Similarity {
    @Override
    public long computeNorm(FieldInvertState state) {
      return 1;
    }

    @Override
    public SimScorer scorer(float boost, CollectionStatistics collection, TermStatistics... terms) {
      return new SimScorer() {
        @Override
        public float score(float freq, long norm) {
          return freq * boost;
        }
      };
    }
  }

  private final DirectoryReader reader;
  private final IndexSearcher searcher;
  /** BM25 only: Anserini's own query generator and analyzer, reached by reflection (their classes need Java 21). */
  private Object generator;
  private Object analyzer;
  private Method buildQuery;
  /** External document ids by Lucene docid, read once; their UTF-8 bytes order ties as Lucene's STRING_VAL sort does. */
  public final String[] ids;
  /** Each Lucene docid's place in the UTF-8 byte order of the external ids (Lucene's STRING_VAL sort), for ties. */
  private final int[] idRank;

  public LeanSearcher(String indexDir, String similarity, float k1, float b) throws IOException {
    reader = DirectoryReader.open(FSDirectory.open(Paths.get(indexDir)));
    searcher = new IndexSearcher(reader);
    searcher.setSimilarity("bm25".equals(similarity) ? new BM25Similarity(k1, b) : new ImpactSimilarity());
    if ("bm25".equals(similarity)) {
      try {
        analyzer = Class.forName("io.anserini.analysis.DefaultEnglishAnalyzer").getMethod("newDefaultInstance").invoke(null);
        Class<?> generatorClass = Class.forName("io.anserini.search.query.BagOfWordsQueryGenerator");
        generator = generatorClass.getConstructor().newInstance();
        buildQuery = generatorClass.getMethod("buildQuery", String.class, Analyzer.class, String.class);
      } catch (ReflectiveOperationException e) {
        throw new IOException("Anserini's BagOfWordsQueryGenerator is not on the classpath", e);
      }
    }
    ids = new String[reader.maxDoc()];
    byte[][] idBytes = new byte[ids.length][];
    StoredFields stored = reader.storedFields();
    for (int doc = 0; doc < ids.length; doc++) {
      ids[doc] = stored.document(doc).get("id");
      idBytes[doc] = ids[doc] == null ? new byte[0] : ids[doc].getBytes(StandardCharsets.UTF_8);
    }
    Integer[] order = new Integer[ids.length];
    for (int doc = 0; doc < ids.length; doc++) {
      order[doc] = doc;
    }
    Arrays.sort(order, (x, y) -> Arrays.compareUnsigned(idBytes[x], idBytes[y]));
    idRank = new int[ids.length];
    for (int place = 0; place < order.length; place++) {
      idRank[order[place]] = place;
    }
  }

  /** A weighted bag of terms (impact queries): the BooleanQuery Anserini's generator builds from a term map. */
  public Hits search(String[] terms, float[] weights, int k) throws IOException {
    long start = System.nanoTime();
    Map<String, Float> query = new HashMap<>();
    for (int i = 0; i < terms.length; i++) {
      query.put(terms[i], weights[i]);
    }
    BooleanQuery.Builder builder = new BooleanQuery.Builder();
    for (String term : query.keySet()) {
      builder.add(new BoostQuery(new TermQuery(new Term("contents", term)), query.get(term)), BooleanClause.Occur.SHOULD);
    }
    return top(builder.build(), k, start);
  }

  /** A query text (BM25): analysed and built by Anserini's own BagOfWordsQueryGenerator, clause order included. */
  public Hits searchText(String text, int k) throws IOException {
    long start = System.nanoTime();
    try {
      return top((Query) buildQuery.invoke(generator, "contents", analyzer, text), k, start);
    } catch (ReflectiveOperationException e) {
      throw new IOException(e);
    }
  }

  /**
   * The top k by (score desc, id asc), Anserini's order, in one pass: a bounded heap whose weakest entry (lowest
   * score, then latest id) is replaced by any better hit. Once the heap is full its weakest score is the minimum
   * competitive score: a document scoring below it cannot enter, one scoring equal still can (it may have an earlier
   * id), so that score itself, not the next float up as in Lucene's own collector, is what Lucene may skip below.
   */
  private final class TopByScoreThenId implements Collector {
    private final int k;
    private final float[] scores;
    private final int[] docs;
    private int size;

    TopByScoreThenId(int k) {
      this.k = k;
      scores = new float[k];
      docs = new int[k];
    }

    /** Is (scoreA, docA) weaker than (scoreB, docB): lower score, or the same score and a later id. */
    private boolean weaker(float scoreA, int docA, float scoreB, int docB) {
      return scoreA < scoreB || (scoreA == scoreB && idRank[docA] > idRank[docB]);
    }

    private void siftDown(int at) {
      while (true) {
        int child = 2 * at + 1;
        if (child >= size) {
          return;
        }
        if (child + 1 < size && weaker(scores[child + 1], docs[child + 1], scores[child], docs[child])) {
          child++;
        }
        if (!weaker(scores[child], docs[child], scores[at], docs[at])) {
          return;
        }
        swap(at, child);
        at = child;
      }
    }

    private void siftUp(int at) {
      while (at > 0) {
        int parent = (at - 1) / 2;
        if (!weaker(scores[at], docs[at], scores[parent], docs[parent])) {
          return;
        }
        swap(at, parent);
        at = parent;
      }
    }

    private void swap(int a, int b) {
      float score = scores[a];
      scores[a] = scores[b];
      scores[b] = score;
      int doc = docs[a];
      docs[a] = docs[b];
      docs[b] = doc;
    }

    @Override
    public ScoreMode scoreMode() {
      return ScoreMode.TOP_SCORES;
    }

    @Override
    public LeafCollector getLeafCollector(LeafReaderContext context) {
      int base = context.docBase;
      return new LeafCollector() {
        private Scorable scorer;

        @Override
        public void setScorer(Scorable scorer) throws IOException {
          this.scorer = scorer;
          if (size == k) {
            scorer.setMinCompetitiveScore(scores[0]);
          }
        }

        @Override
        public void collect(int leafDoc) throws IOException {
          float score = scorer.score();
          int doc = base + leafDoc;
          if (size < k) {
            scores[size] = score;
            docs[size] = doc;
            siftUp(size++);
            if (size == k) {
              scorer.setMinCompetitiveScore(scores[0]);
            }
          } else if (weaker(scores[0], docs[0], score, doc)) {
            float before = scores[0];
            scores[0] = score;
            docs[0] = doc;
            siftDown(0);
            if (scores[0] > before) {
              scorer.setMinCompetitiveScore(scores[0]);
            }
          }
        }
      };
    }

    /** The hits, best first: the heap drained weakest first into the back of the arrays (a heap sort). */
    Hits sorted(long start) {
      int count = size;
      int[] best = new int[count];
      float[] bestScores = new float[count];
      while (size > 0) {
        best[size - 1] = docs[0];
        bestScores[size - 1] = scores[0];
        swap(0, --size);
        siftDown(0);
      }
      return adjusted(best, bestScores, start);
    }
  }

  private Hits top(Query query, int k, long start) throws IOException {
    if (k <= 0) {
      return new Hits(new int[0], new float[0], System.nanoTime() - start);
    }
    TopByScoreThenId collector = new TopByScoreThenId(k);
    searcher.search(query, collector);
    return collector.sorted(start);
  }

  /** ScoreTiesAdjusterReranker's rounding: scores to 4 decimals, then each tie 1e-6 below the one before it. */
  private static Hits adjusted(int[] docs, float[] raw, long start) {
    float[] scores = new float[raw.length];
    int dup = 0;
    for (int i = 0; i < raw.length; i++) {
      scores[i] = (float) (Math.round((double) raw[i] * 10000.0) / 10000.0);
      if (i == 0 || scores[i - 1] - scores[i] > 1e-4f) {
        dup = 0;
      } else {
        dup++;
        scores[i] -= 1e-6f * dup;
      }
    }
    return new Hits(docs, scores, System.nanoTime() - start);
  }

  /** Many queries in one call: query q's terms are terms[offsets[q] .. offsets[q + 1]). */
  public Hits[] batch(String[] terms, float[] weights, int[] offsets, int k, int threads) throws Exception {
    return parallel(offsets.length - 1, threads, query -> {
      int from = offsets[query];
      int to = offsets[query + 1];
      String[] t = new String[to - from];
      float[] w = new float[to - from];
      System.arraycopy(terms, from, t, 0, to - from);
      System.arraycopy(weights, from, w, 0, to - from);
      return search(t, w, k);
    });
  }

  /** Many query texts in one call (BM25). */
  public Hits[] batchText(String[] texts, int k, int threads) throws Exception {
    return parallel(texts.length, threads, query -> searchText(texts[query], k));
  }

  private interface QueryTask {
    Hits run(int query) throws Exception;
  }

  private static Hits[] parallel(int count, int threads, QueryTask task) throws Exception {
    Hits[] out = new Hits[count];
    ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, threads));
    try {
      Future<?>[] pending = new Future<?>[count];
      for (int q = 0; q < count; q++) {
        final int query = q;
        pending[q] = pool.submit(() -> {
          out[query] = task.run(query);
          return null;
        });
      }
      for (Future<?> f : pending) {
        f.get();
      }
    } finally {
      pool.shutdown();
    }
    return out;
  }

  @Override
  public void close() throws IOException {
    reader.close();
  }
}
